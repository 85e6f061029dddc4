"""The operator as users run it outside a cluster: ``regcred run``, a process of its own."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from argocd_harness import PATIENCE_SECONDS

from regcred_dev.controlplane import wait_for
from regcred_dev.controlplane.runner import free_port, spawn_logged

__all__ = ["OperatorProcess"]

STOP_GRACE_SECONDS = 15.0


class OperatorProcess:
    """``regcred run`` against one kubeconfig, started and stopped by the test (by pid)."""

    def __init__(self, kubeconfig: Path, log_path: Path) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.popen: subprocess.Popen[bytes] | None = None
        self.health_port = 0

    def start(self, *extra: str) -> None:
        """Start it and wait until /readyz answers (its caches are filled)."""
        if self.running:
            raise RuntimeError("the operator is already running")
        self.health_port = free_port()
        command = [
            sys.executable,
            "-m",
            "regcred.cli",
            "run",
            "--kubeconfig",
            str(self.kubeconfig),
            "--health-address",
            f"127.0.0.1:{self.health_port}",
            "--metrics-address",
            "",
            *extra,
        ]
        self.popen = spawn_logged(command, self.log_path)
        wait_for(self.ready, PATIENCE_SECONDS, "the operator's /readyz")

    def ready(self) -> bool:
        if self.popen is None or self.popen.poll() is not None:
            raise RuntimeError(f"the operator is not running; log: {self.log_path}")
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.health_port}/readyz", timeout=2
            ) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.popen = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
