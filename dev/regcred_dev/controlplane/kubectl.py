"""kubectl bound to one cluster's kubeconfig: how the demos talk to their cluster.

`regcred_dev.kind` imports no Kubernetes client; it runs the pinned kubectl that
`ensure_binaries` builds. Also a poll loop for what kubectl shows only eventually.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from regcred_dev.controlplane.build import ensure_binaries

__all__ = ["Kubectl", "KubectlError", "wait_for"]

T = TypeVar("T")


class KubectlError(RuntimeError):
    """kubectl failed, or what it shows did not come about in time."""


@dataclass(frozen=True)
class Kubectl:
    """kubectl bound to one cluster's kubeconfig; a failure raises `KubectlError`."""

    binary: Path
    kubeconfig: Path

    @classmethod
    def pinned(cls, kubeconfig: Path) -> Kubectl:
        """The pinned kubectl (built once, then cached) for `kubeconfig`."""
        return cls(ensure_binaries() / "kubectl", kubeconfig)

    def __call__(self, *args: str, stdin: str | None = None, timeout: float = 300) -> str:
        """Run ``kubectl ARGS``; return its stdout."""
        result = subprocess.run(
            [str(self.binary), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise KubectlError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def json(self, *args: str) -> dict[str, Any]:
        """Run ``kubectl ARGS --output json``; return the parsed object."""
        loaded: dict[str, Any] = json.loads(self(*args, "--output", "json"))
        return loaded


def wait_for(condition: Callable[[], T], timeout: float, what: str, interval: float = 1.0) -> T:
    """Call `condition` until it returns something true; return that.

    Raises `KubectlError` naming `what` after `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise KubectlError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
