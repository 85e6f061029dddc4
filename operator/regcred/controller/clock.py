"""Wall-clock time as Kubernetes writes it."""

from __future__ import annotations

import datetime

__all__ = ["utc_now"]


def utc_now() -> str:
    """The current time in RFC 3339, UTC, to the second."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
