"""Go tools for the tests (helm, a registry, crane), built from source once and cached.

Each tool comes through the Go module proxy via a tiny wrapper module that requires
the pinned version; its go.sum is committed beside the tests that use it, so every
download is checked against a known hash. The binary lands in
``<regcred cache>/tools/<name>-<version>/<name>`` and appears only after a successful
build. An environment variable per tool names a binary to use instead.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from regcred.controlplane.build import cache_root

__all__ = ["GoTool", "ensure_go_tool"]


@dataclass(frozen=True)
class GoTool:
    """One pinned Go command: `package` of `module`@`version`, built into `name`."""

    name: str
    module: str
    version: str
    package: str
    sum_file: Path  # the wrapper module's committed go.sum
    env_override: str  # names a binary to use instead of building
    ldflags: str = "-s -w"

    @property
    def folder(self) -> Path:
        return cache_root() / "tools" / f"{self.name}-{self.version}"

    def ensure(self) -> Path:
        """Return the binary, building it first unless it is cached or overridden."""
        configured = os.environ.get(self.env_override)
        if configured:
            return Path(configured)
        binary = self.folder / self.name
        if binary.is_file():
            return binary
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent test run may be building it already
            if not binary.is_file():
                self._build(binary)
        return binary

    def _build(self, binary: Path) -> None:
        """Build into `binary`; the binary appears only once the build succeeded."""
        if shutil.which("go") is None:
            pytest.fail(
                f"building {self.name} needs the Go toolchain on PATH (or set {self.env_override})"
            )
        wrapper = self.folder / "module"
        wrapper.mkdir(exist_ok=True)
        (wrapper / "go.mod").write_text(
            f"module regcred.dev/tools/{self.name}\n\ngo 1.26.0\n\n"
            f"require {self.module} {self.version}\n"
        )
        shutil.copyfile(self.sum_file, wrapper / "go.sum")
        partial = self.folder / f"{self.name}.partial"
        env = {**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": "local"}
        command = [
            "go",
            "build",
            "-mod=mod",
            "-trimpath",
            "-ldflags",
            self.ldflags,
            "-o",
            str(partial),
            self.package,
        ]
        log_path = self.folder / "build.log"
        with log_path.open("w") as log:
            result = subprocess.run(
                command, cwd=wrapper, env=env, stdout=log, stderr=log, check=False
            )
        if result.returncode != 0:
            pytest.fail(f"building {self.name} {self.version} failed; see {log_path}")
        partial.rename(binary)


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
    return GoTool(name, module, version, package, sum_file, env_override, ldflags).ensure()
