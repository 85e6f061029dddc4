"""Pinned Go commands (a registry, crane, helm), built from source once and cached.

Each tool comes through the Go module proxy via a tiny wrapper module that requires
the pinned version; its committed go.sum checks every download. The binary lands in
``<regcred cache>/tools/<name>-<version>/<name>`` and appears only after a successful
build. An environment variable per tool names a binary to use instead.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path

from regcred_dev.controlplane.build import (
    BuildError,
    cache_root,
    exclusive_lock,
    go_build,
    go_environment,
)
from regcred_dev.kind.docker import progress

__all__ = ["GoTool"]


@dataclass(frozen=True)
class GoTool:
    """One pinned Go command: `package` of `module`@`version`, built into `name`."""

    name: str
    module: str
    version: str
    package: str
    sum_file: Path | Traversable  # the wrapper module's committed go.sum
    env_override: str  # names a binary to use instead of building
    ldflags: str = "-s -w"

    @property
    def folder(self) -> Path:
        return cache_root() / "tools" / f"{self.name}-{self.version}"

    def ensure(self) -> Path:
        """Return the binary, building it first unless it is cached or overridden.

        Raises `BuildError` when Go is missing or the build fails.
        """
        configured = os.environ.get(self.env_override)
        if configured:
            return Path(configured)
        binary = self.folder / self.name
        if binary.is_file():
            return binary
        # A concurrent run may be building it already.
        with exclusive_lock(self.folder / ".lock"):
            if not binary.is_file():
                self._build(binary)
        return binary

    def _build(self, binary: Path) -> None:
        """Build into `binary`; the binary appears only once the build succeeded."""
        if shutil.which("go") is None:
            raise BuildError(
                f"building {self.name} needs the Go toolchain on PATH (or set {self.env_override})"
            )
        wrapper = self.folder / "module"
        wrapper.mkdir(exist_ok=True)
        (wrapper / "go.mod").write_text(
            f"module regcred.dev/tools/{self.name}\n\ngo 1.26.0\n\n"
            f"require {self.module} {self.version}\n"
        )
        (wrapper / "go.sum").write_bytes(self.sum_file.read_bytes())
        partial = self.folder / f"{self.name}.partial"
        progress(f"building {self.name} {self.version} ...")
        with (self.folder / "build.log").open("w") as log:
            go_build(wrapper, str(partial), [self.package], go_environment(), log, self.ldflags)
        partial.rename(binary)
