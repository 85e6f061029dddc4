"""regcred-operator: image pull secrets in every matching namespace."""

__version__ = "0.1.0"

__all__ = ["__version__"]
