"""Pinned Go tools for the tests: the package's `GoTool` (regcred_dev.kind.gotools), with a
build failure reported as a test failure rather than an error with a traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from regcred_dev.controlplane import BuildError
from regcred_dev.kind.gotools import GoTool

__all__ = ["GoTool", "ensure_go_tool", "go_tool"]


def go_tool(tool: GoTool) -> Path:
    """Return `tool`'s binary, building it once; a failed build fails the test."""
    try:
        return tool.ensure()
    except BuildError as error:
        pytest.fail(str(error), pytrace=False)


def ensure_go_tool(
    name: str,
    module: str,
    version: str,
    package: str,
    sum_file: Path,
    env_override: str,
    ldflags: str = "-s -w",
) -> Path:
    """Return the binary of a pinned Go command, building it once (see `GoTool`)."""
    return go_tool(GoTool(name, module, version, package, sum_file, env_override, ldflags))
