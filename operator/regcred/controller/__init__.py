"""The controller package; see controller.py for how work flows through it."""

from regcred.controller.apply import ReconcileStats
from regcred.controller.controller import Controller

__all__ = ["Controller", "ReconcileStats"]
