"""What may ship in the wheel and the image: the product (`regcred`), never the workshop.

The workshop is the separate project in dev/ (package `regcred_dev`): the local control
plane, kind, the release pipeline and the demo. Its modules once lived inside `regcred`
(`regcred/controlplane/`, ...), so a file is the workshop's under either name.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

__all__ = ["PRODUCT", "WORKSHOP", "product_files", "workshop_files"]

REPO = Path(__file__).resolve().parents[1]
PRODUCT = REPO / "operator" / "regcred"
WORKSHOP = REPO / "dev" / "regcred_dev"
# The workshop's own modules; its cli.py and __init__.py share their names with the product's.
WORKSHOP_ONLY = frozenset(
    path.name for path in WORKSHOP.iterdir() if path.name not in ("__init__.py", "cli.py", "__pycache__")
)


def product_files() -> set[str]:
    """The product's source files, as a wheel or site-packages names them (regcred/...)."""
    return {
        path.relative_to(PRODUCT.parent).as_posix()
        for path in PRODUCT.rglob("*.py")
        if "__pycache__" not in path.parts
    }


def workshop_files(names: Iterable[str]) -> list[str]:
    """Of file names relative to site-packages (or a wheel's root), those of the workshop."""
    found = []
    for name in names:
        top, _, rest = name.partition("/")
        if top.startswith(("regcred_dev", "regcred-dev")) or name.endswith("go.sum"):
            found.append(name)
        elif top == "regcred" and rest.split("/", 1)[0] in WORKSHOP_ONLY:
            found.append(name)
    return sorted(found)
