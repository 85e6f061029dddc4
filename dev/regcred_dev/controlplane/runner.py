"""Run etcd, kube-apiserver and kube-controller-manager as plain local processes.

`LocalControlPlane` owns a temporary folder with certificates, data and one log file
per process, listens on 127.0.0.1 only, and on exit stops exactly the processes it
started. Each child also asks the Linux kernel to kill it if this Python process dies,
so a crashed test run leaves nothing behind.
"""

from __future__ import annotations

import atexit
import base64
import ctypes
import ctypes.util
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Self, TypeVar

import yaml

from regcred_dev.controlplane.build import ensure_binaries
from regcred_dev.controlplane.certs import SERVICE_CLUSTER_IP_RANGE, ControlPlanePki, make_pki

__all__ = ["ControlPlaneError", "LocalControlPlane", "free_port", "spawn_logged"]

logger = logging.getLogger(__name__)

LOCALHOST = "127.0.0.1"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
CONTROLLERS = (
    "serviceaccount",
    "serviceaccount-token",
    "namespace",
    "garbagecollector",
    "root-ca-cert-publisher",
    # Fills admin, edit and view from the ClusterRoles labelled to aggregate into them.
    "clusterrole-aggregation",
)
STOP_TIMEOUT_SECONDS = 15.0
# kube-apiserver drains open watches (the controller manager's) for up to its request
# timeout of 60 s before exiting. Its state lives in etcd, so a hard stop after a short
# grace period loses nothing and keeps restarts quick.
APISERVER_STOP_GRACE_SECONDS = 3.0
POLL_INTERVAL_SECONDS = 0.2
# Who changed what, and when: every write's metadata (user, user agent, source IP,
# timestamps), nothing of its body; reads are not recorded.
AUDIT_WRITES_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    verbs: [get, list, watch]
  - level: Metadata
"""
LOG_TAIL_LINES = 25
_PR_SET_PDEATHSIG = 1

T = TypeVar("T")


class ControlPlaneError(RuntimeError):
    """The local control plane failed to start or a process of it died."""


@dataclass
class _ManagedProcess:
    name: str
    log_path: Path
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log written)"
        return "\n".join(lines[-LOG_TAIL_LINES:])


class LocalControlPlane:
    """etcd + kube-apiserver + kube-controller-manager on 127.0.0.1, as a context manager.

    Typical use::

        with LocalControlPlane() as control_plane:
            run_tests_against(control_plane.kubeconfig)
    """

    def __init__(
        self,
        bin_dir: Path | None = None,
        *,
        kubeconfig_path: Path | None = None,
        start_timeout: float = 180.0,
        apiserver_args: Sequence[str] = (),
    ) -> None:
        """Prepare, without starting, a control plane using binaries from ``bin_dir``.

        Without ``bin_dir`` the binaries are found in, or built into, the cache. The admin
        kubeconfig is also written to ``kubeconfig_path`` when given. ``apiserver_args``
        are added to kube-apiserver's command line (e.g. ``--audit-log-path=...``), after
        the defaults, so a repeated flag overrides its default.
        """
        self._bin_dir = bin_dir
        self._extra_kubeconfig = kubeconfig_path
        self._extra_apiserver_args = tuple(apiserver_args)
        self._start_timeout = start_timeout
        self._workdir: Path | None = None
        self._pki: ControlPlanePki | None = None
        self._processes: dict[str, _ManagedProcess] = {}
        self._etcd_client_url = ""
        self._apiserver_port = 0
        self._previous_sigterm_handler: Any = None

    # -- public API -----------------------------------------------------------------

    @property
    def workdir(self) -> Path:
        """The temporary folder holding certificates, etcd data, kubeconfigs and logs."""
        return self._require_started(self._workdir)

    @property
    def kubeconfig(self) -> Path:
        """Path of an admin (system:masters) kubeconfig for this control plane."""
        return self._extra_kubeconfig or self.workdir / "admin.kubeconfig"

    @property
    def server(self) -> str:
        """The kube-apiserver URL."""
        return f"https://{LOCALHOST}:{self._apiserver_port}"

    @property
    def audit_log(self) -> Path:
        """kube-apiserver's audit log: one JSON event per line for every write request."""
        return self.workdir / "kube-apiserver" / "audit.log"

    @property
    def etcd_url(self) -> str:
        """etcd's client URL (plain HTTP on 127.0.0.1), e.g. for fault tests that compact it."""
        return self._require_started(self._etcd_client_url or None)

    @property
    def bin_dir(self) -> Path:
        """The folder with etcd, kube-apiserver, kube-controller-manager and kubectl."""
        return self._require_started(self._bin_dir)

    @property
    def kubectl(self) -> Path:
        """Path of the kubectl built alongside the control plane."""
        return self.bin_dir / "kubectl"

    def pids(self) -> dict[str, int]:
        """Process ids of the running processes, by name."""
        return {
            name: process.popen.pid
            for name, process in self._processes.items()
            if process.popen is not None and process.popen.poll() is None
        }

    def start(self) -> None:
        """Start all processes and wait until the cluster is usable; clean up on failure."""
        if self._workdir is not None:
            raise ControlPlaneError("this control plane is already started")
        started = time.monotonic()
        self._bin_dir = self._bin_dir or ensure_binaries()
        self._workdir = Path(tempfile.mkdtemp(prefix="regcred-controlplane-"))
        atexit.register(self.stop)
        try:
            self._pki = make_pki(self._workdir / "pki")
            self._start_etcd()
            self._apiserver_port = free_port()
            self._write_kubeconfigs()
            self.start_apiserver()
            self._start_controller_manager()
            self._wait_for(
                "the default ServiceAccount in namespace default",
                lambda: self._get("/api/v1/namespaces/default/serviceaccounts/default") == 200,
            )
        except BaseException:
            self.stop()
            raise
        logger.info(
            "local control plane ready in %.1f s at %s (kubeconfig %s)",
            time.monotonic() - started,
            self.server,
            self.kubeconfig,
        )

    def stop(self) -> None:
        """Stop every process this object started and remove its folder. Idempotent."""
        for name in reversed(list(self._processes)):
            self._stop_process(self._processes[name])
        self._processes.clear()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        atexit.unregister(self.stop)

    def stop_apiserver(self) -> None:
        """Stop kube-apiserver only; etcd keeps the data and the port stays reserved."""
        process = self._processes.get("kube-apiserver")
        if process is not None:
            self._stop_process(process, grace_seconds=APISERVER_STOP_GRACE_SECONDS)

    def start_apiserver(self) -> None:
        """Start kube-apiserver on its port against the same etcd and wait for /readyz."""
        pki = self._require_started(self._pki)
        if "kube-apiserver" in self.pids():
            raise ControlPlaneError("kube-apiserver is already running")
        apiserver_dir = self.workdir / "kube-apiserver"
        apiserver_dir.mkdir(exist_ok=True)
        audit_policy = apiserver_dir / "audit-policy.yaml"
        audit_policy.write_text(AUDIT_WRITES_POLICY)
        args = [
            str(self.bin_dir / "kube-apiserver"),
            f"--etcd-servers={self._etcd_client_url}",
            f"--bind-address={LOCALHOST}",
            f"--advertise-address={LOCALHOST}",
            f"--secure-port={self._apiserver_port}",
            f"--cert-dir={apiserver_dir}",
            f"--tls-cert-file={pki.serving.cert}",
            f"--tls-private-key-file={pki.serving.key}",
            f"--client-ca-file={pki.ca_cert}",
            "--authorization-mode=RBAC",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki.service_account.cert}",
            f"--service-account-signing-key-file={pki.service_account.key}",
            # The endpoint reconciler refuses a loopback address, and nothing runs in
            # Pods here to use the `kubernetes` Service's endpoints anyway.
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            f"--audit-policy-file={audit_policy}",
            f"--audit-log-path={self.audit_log}",
            *self._extra_apiserver_args,
        ]
        self._spawn("kube-apiserver", args)
        self._wait_for("kube-apiserver /readyz", lambda: self._get("/readyz") == 200)

    def restart_apiserver(self) -> None:
        """Stop and start kube-apiserver; objects survive because etcd keeps running."""
        self.stop_apiserver()
        self.start_apiserver()

    def check_alive(self) -> None:
        """Raise `ControlPlaneError` with its log tail if a started process has exited."""
        for process in self._processes.values():
            if process.popen is not None and process.popen.poll() is not None:
                raise ControlPlaneError(
                    f"{process.name} exited with code {process.popen.returncode}; "
                    f"last lines of {process.log_path}:\n{process.tail()}"
                )

    def __enter__(self) -> Self:
        self._install_sigterm_handler()
        try:
            self.start()
        except BaseException:
            self._restore_sigterm_handler()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self.stop()
        finally:
            self._restore_sigterm_handler()

    # -- processes ------------------------------------------------------------------

    def _start_etcd(self) -> None:
        client_port, peer_port = free_port(), free_port()
        self._etcd_client_url = f"http://{LOCALHOST}:{client_port}"
        peer_url = f"http://{LOCALHOST}:{peer_port}"
        args = [
            str(self.bin_dir / "etcd"),
            "--name=regcred",
            f"--data-dir={self.workdir / 'etcd-data'}",
            f"--listen-client-urls={self._etcd_client_url}",
            f"--advertise-client-urls={self._etcd_client_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=regcred={peer_url}",
            # Test data is disposable; skipping fsync makes every write much faster.
            "--unsafe-no-fsync=true",
        ]
        self._spawn("etcd", args)
        self._wait_for("etcd /health", self._etcd_healthy)

    def _start_controller_manager(self) -> None:
        pki = self._require_started(self._pki)
        args = [
            str(self.bin_dir / "kube-controller-manager"),
            f"--kubeconfig={self.workdir / 'controller-manager.kubeconfig'}",
            f"--controllers={','.join(CONTROLLERS)}",
            f"--service-account-private-key-file={pki.service_account.key}",
            f"--root-ca-file={pki.ca_cert}",
            # Each controller then acts as its own ServiceAccount with the narrow RBAC
            # role Kubernetes bootstraps for it; the namespace controller needs that to
            # delete a namespace's contents.
            "--use-service-account-credentials=true",
            "--leader-elect=false",
            f"--bind-address={LOCALHOST}",
            # Nothing here scrapes its metrics or health endpoints, so serve nothing.
            "--secure-port=0",
        ]
        self._spawn("kube-controller-manager", args)

    def _spawn(self, name: str, args: list[str]) -> None:
        log_path = self.workdir / f"{name}.log"
        process = _ManagedProcess(name=name, log_path=log_path)
        with log_path.open("ab") as log:
            log.write(f"--- starting: {' '.join(args)}\n".encode())
        process.popen = spawn_logged(args, log_path, cwd=self.workdir)
        self._processes[name] = process
        logger.debug("started %s (pid %d), log %s", name, process.popen.pid, log_path)

    def _stop_process(
        self, process: _ManagedProcess, grace_seconds: float = STOP_TIMEOUT_SECONDS
    ) -> None:
        popen = process.popen
        if popen is None:
            return
        if popen.poll() is None:
            popen.terminate()
            try:
                popen.wait(timeout=grace_seconds)
            except subprocess.TimeoutExpired:
                logger.debug(
                    "%s (pid %d) still running %.0f s after SIGTERM; killing it",
                    process.name,
                    popen.pid,
                    grace_seconds,
                )
                popen.kill()
                popen.wait()
        process.popen = None

    # -- readiness ------------------------------------------------------------------

    def _wait_for(self, what: str, condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self._start_timeout
        while True:
            self.check_alive()
            if condition():
                return
            if time.monotonic() > deadline:
                logs = "\n".join(
                    f"--- last lines of {process.log_path}:\n{process.tail()}"
                    for process in self._processes.values()
                )
                raise ControlPlaneError(
                    f"timed out after {self._start_timeout:.0f} s waiting for {what}\n{logs}"
                )
            time.sleep(POLL_INTERVAL_SECONDS)

    def _etcd_healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self._etcd_client_url}/health", timeout=2) as reply:
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _get(self, path: str) -> int:
        """GET an API path as admin; return the HTTP status, or 0 when unreachable."""
        try:
            with urllib.request.urlopen(
                f"{self.server}{path}", timeout=5, context=self._admin_tls_context()
            ) as reply:
                return int(reply.status)
        except urllib.error.HTTPError as error:
            return error.code
        except (urllib.error.URLError, OSError):
            return 0

    def _admin_tls_context(self) -> ssl.SSLContext:
        pki = self._require_started(self._pki)
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        context.load_cert_chain(str(pki.admin_client.cert), str(pki.admin_client.key))
        return context

    # -- kubeconfigs ----------------------------------------------------------------

    def _write_kubeconfigs(self) -> None:
        pki = self._require_started(self._pki)
        admin = _kubeconfig(self.server, pki.ca_cert, pki.admin_client.cert, pki.admin_client.key)
        targets = [self.workdir / "admin.kubeconfig"]
        if self._extra_kubeconfig is not None:
            targets.append(self._extra_kubeconfig)
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch(mode=0o600)
            target.write_text(admin)
        (self.workdir / "controller-manager.kubeconfig").write_text(
            _kubeconfig(
                self.server,
                pki.ca_cert,
                pki.controller_manager_client.cert,
                pki.controller_manager_client.key,
            )
        )

    # -- signals --------------------------------------------------------------------

    def _install_sigterm_handler(self) -> None:
        # Turn SIGTERM into SystemExit so `with` blocks unwind and stop the children;
        # only where Python allows it and nobody else has claimed the signal.
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return
        self._previous_sigterm_handler = signal.signal(signal.SIGTERM, _exit_on_sigterm)

    def _restore_sigterm_handler(self) -> None:
        if self._previous_sigterm_handler is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm_handler)
            self._previous_sigterm_handler = None

    @staticmethod
    def _require_started(value: T | None) -> T:
        if value is None:
            raise ControlPlaneError("the local control plane is not started")
        return value


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOCALHOST, 0))
        return int(probe.getsockname()[1])


def _kubeconfig(server: str, ca: Path, cert: Path, key: Path) -> str:
    """Return a self-contained kubeconfig (certificates inlined) for one user."""

    def inline(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "regcred-local",
                "cluster": {"server": server, "certificate-authority-data": inline(ca)},
            },
        ],
        "users": [
            {
                "name": "regcred-local",
                "user": {"client-certificate-data": inline(cert), "client-key-data": inline(key)},
            },
        ],
        "contexts": [
            {
                "name": "regcred-local",
                "context": {"cluster": "regcred-local", "user": "regcred-local"},
            },
        ],
        "current-context": "regcred-local",
    }
    return yaml.safe_dump(config, sort_keys=False)


def spawn_logged(
    args: Sequence[str],
    log_path: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    own_group: bool = True,
) -> subprocess.Popen[bytes]:
    """Start a child that appends its output to `log_path` and dies with this process.

    In its own process group (`own_group`), a Ctrl-C in the terminal reaches only this
    Python process, which then stops its children in order.
    """
    with log_path.open("ab") as log:
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            process_group=0 if own_group else None,
            # The hook only calls prctl and getppid, so it takes no lock a thread of
            # this process could hold across the fork.
            preexec_fn=die_with_parent_hook(),  # noqa: PLW1509
        )


def die_with_parent_hook() -> Callable[[], None] | None:
    """Return a pre-exec hook that makes the child die with this process (Linux only).

    Elsewhere there is no such kernel feature; `atexit` and the context manager remain.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    libc = ctypes.CDLL(libc_name, use_errno=True)
    parent_pid = os.getpid()

    def die_with_parent() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        # The parent may have died between fork and prctl; then nobody would kill us.
        if os.getppid() != parent_pid:
            os._exit(1)

    return die_with_parent
