"""docs/settings.md and hack/settings_reference.py, the script that generates it."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
SETTINGS_PAGE = REPO / "docs" / "settings.md"


@cache
def settings_generator() -> ModuleType:
    """hack/settings_reference.py, loaded as a module (hack/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("settings_reference", REPO / "hack" / "settings_reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
