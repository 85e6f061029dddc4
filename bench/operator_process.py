"""The operator as a separate process (`regcred run`), with its resident memory sampled, its
CPU time read and its connection-pool warnings counted."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

import psutil

from regcred_dev.controlplane.runner import free_port

__all__ = ["OperatorProcess", "OperatorRecord"]

READY_TIMEOUT_SECONDS = 300.0
RSS_SAMPLE_SECONDS = 0.1
# urllib3's warning when a pool is too small for its users: every discarded connection
# is a new TCP and TLS handshake later.
POOL_WARNING = "Connection pool is full"


@dataclass
class OperatorRecord:
    """One operator process: resident set size samples (seconds since the benchmark began,
    bytes) and how it ended."""

    label: str
    samples: list[tuple[float, int]] = field(default_factory=list)
    exit_code: int | None = None
    # Seconds from SIGTERM to exit; one still running after the grace period is killed.
    stop_seconds: float | None = None
    killed: bool = False
    # User and system CPU seconds, read last just before it stopped.
    cpu_seconds: float = 0.0
    # Connection-pool warnings in its log.
    pool_warnings: int = 0

    @property
    def peak(self) -> int:
        return max((rss for _, rss in self.samples), default=0)


class OperatorProcess:
    """`python -m regcred.cli run` against the cluster, as its own user; stop() ends it by PID."""

    def __init__(
        self,
        kubeconfig: Path,
        namespace: str,
        concurrency: int,
        log_path: Path,
        record: OperatorRecord,
        epoch: float,
        stop_grace_seconds: float,
        metrics_address: str = "",
    ) -> None:
        self._health_port = free_port()
        self._command = [
            sys.executable,
            "-m",
            "regcred.cli",
            "run",
            "--kubeconfig",
            str(kubeconfig),
            "--operator-namespace",
            namespace,
            "--concurrency",
            str(concurrency),
            # Health on a private loopback port tells us when the caches are filled.
            "--health-address",
            f"127.0.0.1:{self._health_port}",
            "--metrics-address",
            metrics_address,
        ]
        self._log_path = log_path
        self.record = record
        self._epoch = epoch
        self._stop_grace_seconds = stop_grace_seconds
        self._popen: subprocess.Popen[bytes] | None = None
        self._sampling = threading.Event()
        self._sampler: threading.Thread | None = None
        self._process: psutil.Process | None = None
        self._log_offset = 0

    def start(self) -> Self:
        """Start the process and return once it reports ready."""
        self.launch()
        self.wait_ready()
        return self

    def launch(self) -> None:
        """Start the process and return at once (a cold start is timed from here)."""
        self._log_offset = self._log_path.stat().st_size if self._log_path.exists() else 0
        with self._log_path.open("ab") as log:
            self._popen = subprocess.Popen(
                self._command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        self._process = psutil.Process(self._popen.pid)
        self._sampling.set()
        self._sampler = threading.Thread(target=self._sample, args=(self._popen.pid,), daemon=True)
        self._sampler.start()

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def cpu_seconds(self) -> float:
        """User and system CPU seconds the running process has used since it started."""
        assert self._process is not None
        times = self._process.cpu_times()
        self.record.cpu_seconds = times.user + times.system
        return self.record.cpu_seconds

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time (as a kubelet would); idempotent."""
        popen, self._popen = self._popen, None
        if popen is not None and popen.poll() is None:
            self.cpu_seconds()
            asked = time.monotonic()
            popen.send_signal(signal.SIGTERM)
            try:
                popen.wait(self._stop_grace_seconds)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()
                self.record.killed = True
            self.record.stop_seconds = time.monotonic() - asked
        if popen is not None:
            self.record.exit_code = popen.returncode
        self._sampling.clear()
        if self._sampler is not None:
            self._sampler.join()
        if popen is not None and self._log_path.exists():
            with self._log_path.open("rb") as log:
                log.seek(self._log_offset)
                self.record.pool_warnings = log.read().decode(errors="replace").count(POOL_WARNING)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _sample(self, pid: int) -> None:
        try:
            process = psutil.Process(pid)
            while self._sampling.is_set():
                self.record.samples.append(
                    (time.monotonic() - self._epoch, process.memory_info().rss)
                )
                time.sleep(RSS_SAMPLE_SECONDS)
        except psutil.NoSuchProcess:
            pass  # it exited; stop() or wait_ready() reports how

    def wait_ready(self) -> None:
        """Return once the process reports ready; raise if it exits or takes too long."""
        assert self._popen is not None
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not self._ready():
            if self._popen.poll() is not None:
                raise RuntimeError(
                    f"the operator exited with code {self._popen.returncode}; see {self._log_path}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"the operator was not ready after {READY_TIMEOUT_SECONDS:.0f} s; see {self._log_path}"
                )
            time.sleep(0.1)

    def _ready(self) -> bool:
        # /readyz where the operator serves it (ready once its caches are filled); else
        # kopf's /healthz, which answers only after the startup handler filled them.
        for path in ("/readyz", "/healthz"):
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self._health_port}{path}", timeout=2
                ) as reply:
                    return bool(reply.status == 200)
            except urllib.error.HTTPError as error:
                if error.code != 404:
                    return False
            except OSError:
                return False
        return False
