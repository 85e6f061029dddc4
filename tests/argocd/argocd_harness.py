"""Argo CD as plain processes against a local control plane: redis, repo-server, controller.

What a cluster install (the ``core-install`` manifests) would provide is done here by
hand: Argo CD's CRDs, its config objects in namespace ``argocd``, a ``server.secretkey``
and the ``default`` AppProject (Argo CD's API server normally creates those two; it is not
needed to sync and does not run here). The project's health checks are merged into
``argocd-cm`` with the very command docs/argocd.md gives users.

The application controller runs out of cluster with the admin kubeconfig;
``ARGOCD_FAKE_IN_CLUSTER=true`` makes ``https://kubernetes.default.svc`` (the destination
every Application here names) mean that kubeconfig's cluster. It refreshes every
Application every few seconds instead of every few minutes, and records each resource's
health in the Application's status, where the tests read it.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import urllib3
from argocd_build import ArgoCDInstall
from kubernetes import client, watch

from regcred_dev.controlplane import Kubectl, KubectlError, wait_for
from regcred_dev.controlplane.runner import free_port, spawn_logged

__all__ = [
    "ARGOCD_NAMESPACE",
    "PATIENCE_SECONDS",
    "ApplicationRecorder",
    "Applications",
    "ArgoCD",
    "wait_established",
]

ARGOCD_NAMESPACE = "argocd"
REPO = Path(__file__).resolve().parents[2]
HEALTH_PATCH = REPO / "deploy" / "argocd" / "argocd-cm-health.yaml"
# How often the controller compares every Application with Git and the cluster (the
# default is 120 s plus up to 60 s of jitter); a test waits a few of these at most.
APP_RESYNC_SECONDS = 5
# How long to wait for what takes seconds on an idle machine: the bound of a wait, never
# a timed assertion. Test machines may be shared, and then everything is slower.
PATIENCE_SECONDS = 300.0
# Phases of an Application's operation that has not ended.
IN_PROGRESS = ("Running", "Terminating")
GROUP, VERSION = "argoproj.io", "v1alpha1"
STOP_GRACE_SECONDS = 10.0

DEFAULT_PROJECT = """\
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata:
  name: default
  namespace: argocd
spec:
  sourceRepos: ["*"]
  destinations: [{server: "*", namespace: "*"}]
  clusterResourceWhitelist: [{group: "*", kind: "*"}]
"""


class ArgoCD:
    """Argo CD's controller and repo-server (and their redis) for one cluster."""

    def __init__(self, install: ArgoCDInstall, kubectl: Kubectl, workdir: Path) -> None:
        self.install = install
        self.kubectl = kubectl
        self.workdir = workdir
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        """Install Argo CD's objects, start the three processes, wait until they serve."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._install_objects()
            redis_port, repo_port = free_port(), free_port()
            redis = f"127.0.0.1:{redis_port}"
            self._spawn(
                "redis",
                # No persistence: a cache that dies with the test session.
                [
                    "redis-server",
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(redis_port),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
            )
            self._spawn(
                "repo-server",
                [
                    str(self.install.command("argocd-repo-server")),
                    "--redis",
                    redis,
                    "--address",
                    "127.0.0.1",
                    "--port",
                    str(repo_port),
                    "--metrics-address",
                    "127.0.0.1",
                    "--metrics-port",
                    str(free_port()),
                    # Plain gRPC on 127.0.0.1; the empty CA path goes with --disable-tls.
                    "--disable-tls",
                    "--client-ca-path",
                    "",
                    "--loglevel",
                    "info",
                ],
            )
            wait_for(
                lambda: _port_open(repo_port) or self._check_alive(),
                PATIENCE_SECONDS,
                "the repo-server",
            )
            self._spawn(
                "application-controller",
                [
                    str(self.install.command("argocd-application-controller")),
                    "--kubeconfig",
                    str(self.kubectl.kubeconfig),
                    "--namespace",
                    ARGOCD_NAMESPACE,
                    "--redis",
                    redis,
                    "--repo-server",
                    f"127.0.0.1:{repo_port}",
                    "--repo-server-plaintext",
                    "--metrics-port",
                    str(free_port()),
                    "--persist-resource-health",
                    "--app-resync",
                    str(APP_RESYNC_SECONDS),
                    "--app-resync-jitter",
                    "0",
                    "--loglevel",
                    "info",
                ],
            )
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the processes this object started, newest first, by pid."""
        for popen in reversed(list(self._processes.values())):
            if popen.poll() is None:
                popen.terminate()
                try:
                    popen.wait(timeout=STOP_GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    popen.kill()
                    popen.wait()
        self._processes.clear()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def _check_alive(self) -> bool:
        for name, popen in self._processes.items():
            if popen.poll() is not None:
                tail = "\n".join(self.log(name).splitlines()[-20:])
                raise RuntimeError(f"{name} exited with {popen.returncode}:\n{tail}")
        return False

    def _spawn(self, name: str, args: list[str]) -> None:
        data = self.workdir / "data"
        for sub in ("tls", "ssh", "gnupg", "tmp"):
            (data / sub).mkdir(parents=True, exist_ok=True)
        (data / "gnupg").chmod(0o700)
        env = {
            # The wrapper scripts and kustomize first; git and redis-server from the system.
            "PATH": f"{self.install.bin}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(data),
            "TMPDIR": str(data / "tmp"),
            # The in-cluster destination, faked, is the cluster of $KUBECONFIG.
            "ARGOCD_FAKE_IN_CLUSTER": "true",
            "KUBECONFIG": str(self.kubectl.kubeconfig),
            "ARGOCD_GPG_ENABLED": "false",
            "ARGOCD_TLS_DATA_PATH": str(data / "tls"),
            "ARGOCD_SSH_DATA_PATH": str(data / "ssh"),
            "ARGOCD_GNUPGHOME": str(data / "gnupg"),
            "ARGOCD_ASK_PASS_SOCK": str(data / f"{name}-askpass.sock"),
            # Git for the repo-server: no user or system configuration of this machine.
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        self._processes[name] = spawn_logged(args, self.workdir / f"{name}.log", self.workdir, env)

    def _install_objects(self) -> None:
        kubectl = self.kubectl
        kubectl("apply", "--server-side", "-f", str(self.install.crds))
        for crd in ("applications.argoproj.io", "appprojects.argoproj.io"):
            wait_established(kubectl, crd)
        if not _exists(kubectl, "namespace", ARGOCD_NAMESPACE):
            kubectl("create", "namespace", ARGOCD_NAMESPACE)
        kubectl("apply", "--server-side", "-n", ARGOCD_NAMESPACE, "-f", str(self.install.config))
        key = secrets.token_urlsafe(32)
        kubectl(
            "-n",
            ARGOCD_NAMESPACE,
            "patch",
            "secret",
            "argocd-secret",
            "--type",
            "merge",
            "-p",
            f'{{"stringData": {{"server.secretkey": "{key}"}}}}',
        )
        kubectl("apply", "--server-side", "-f", "-", stdin=DEFAULT_PROJECT)
        # As docs/argocd.md tells users: merge the health checks into the live argocd-cm.
        kubectl(
            "-n",
            ARGOCD_NAMESPACE,
            "patch",
            "configmap",
            "argocd-cm",
            "--type",
            "merge",
            "--patch-file",
            str(HEALTH_PATCH),
        )


class Applications:
    """Application and AppProject objects through the Kubernetes API."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api_client)

    def apply(self, obj: dict[str, Any]) -> None:
        """Create or replace an Application or AppProject in namespace argocd."""
        plural = {"Application": "applications", "AppProject": "appprojects"}[obj["kind"]]
        name = obj["metadata"]["name"]
        body = {**obj, "metadata": {**obj["metadata"], "namespace": ARGOCD_NAMESPACE}}
        try:
            current = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, ARGOCD_NAMESPACE, plural, name
            )
        except client.ApiException as error:
            if error.status != 404:
                raise
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, ARGOCD_NAMESPACE, plural, body
            )
            return
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        body.setdefault("status", current.get("status"))
        self.custom.replace_namespaced_custom_object(
            GROUP, VERSION, ARGOCD_NAMESPACE, plural, name, body
        )

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            app: dict[str, Any] = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, ARGOCD_NAMESPACE, "applications", name
            )
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise
        return app

    def delete(self, name: str) -> None:
        try:
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, ARGOCD_NAMESPACE, "applications", name
            )
        except client.ApiException as error:
            if error.status != 404:
                raise

    def patch(self, name: str, body: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, ARGOCD_NAMESPACE, "applications", name, body
        )

    def refresh(self, name: str) -> None:
        """Ask for a comparison now, as ``argocd app get --refresh`` does."""
        self.patch(name, {"metadata": {"annotations": {"argocd.argoproj.io/refresh": "normal"}}})

    def sync(self, name: str, marker: str) -> None:
        """Start a sync operation once none is in progress, as ``argocd app sync`` does.

        `marker` names the initiator; `synced(marker)` then tells when this very sync is
        done, even if a later operation has replaced it in ``status.operationState``.
        """
        wait_for(
            lambda: self._start_sync(name, marker), PATIENCE_SECONDS, f"Application {name} idle", interval=0.2
        )

    def _start_sync(self, name: str, marker: str) -> bool:
        """Set the sync operation if none is in progress; False to try again later.

        Like Argo CD's API server: the controller clears ``operation`` when the operation
        it runs ends, so one set meanwhile (say during a self-heal) would be lost.
        Conditioned on the resourceVersion read, so neither side overwrites the other.
        """
        app = self.get(name)
        assert app is not None, f"no Application {name}"
        if "operation" in app or operation_phase(app) in IN_PROGRESS:
            return False
        options = app["spec"].get("syncPolicy", {}).get("syncOptions", [])
        operation = {
            "initiatedBy": {"username": marker},
            "sync": {"syncOptions": options, "syncStrategy": {"hook": {}}},
        }
        precondition = {"resourceVersion": app["metadata"]["resourceVersion"]}
        try:
            self.patch(name, {"metadata": precondition, "operation": operation})
        except client.ApiException as error:
            if error.status == 409:
                return False
            raise
        return True

    def wait(
        self,
        name: str,
        condition: Callable[[dict[str, Any]], Any],
        what: str,
        timeout: float = PATIENCE_SECONDS,
    ) -> dict[str, Any]:
        """Poll the Application until `condition(app)` is true; return the Application."""

        def check() -> dict[str, Any] | None:
            app = self.get(name)
            return app if app is not None and condition(app) else None

        try:
            return wait_for(check, timeout, f"Application {name}: {what}", interval=0.5)
        except KubectlError as error:
            raise AssertionError(f"{error}; last seen: {summary(self.get(name))}") from None


def synced(marker: str) -> Callable[[dict[str, Any]], bool]:
    """True once the sync started by `Applications.sync(..., marker)` succeeded.

    A full sync that succeeds is recorded in ``status.history`` with its initiator; the
    operation state alone may already show a later sync (a self-heal, say).
    """

    def check(app: dict[str, Any]) -> bool:
        status = app.get("status", {})
        state = status.get("operationState", {})
        if state.get("phase") in IN_PROGRESS:
            return False
        initiators = [entry.get("initiatedBy", {}) for entry in status.get("history", [])]
        return {"username": marker} in initiators

    return check


def sync_status(app: dict[str, Any]) -> str | None:
    return app.get("status", {}).get("sync", {}).get("status")  # type: ignore[no-any-return]


def health_status(app: dict[str, Any]) -> str | None:
    return app.get("status", {}).get("health", {}).get("status")  # type: ignore[no-any-return]


def operation_phase(app: dict[str, Any]) -> str | None:
    return app.get("status", {}).get("operationState", {}).get("phase")  # type: ignore[no-any-return]


def resource_status(app: dict[str, Any], kind: str, name: str) -> dict[str, Any] | None:
    """The Application's record of one of its resources (sync status and health)."""
    for resource in app.get("status", {}).get("resources", []):
        if resource["kind"] == kind and resource["name"] == name:
            return resource  # type: ignore[no-any-return]
    return None


def summary(app: dict[str, Any] | None) -> str:
    """What a failure message should show of an Application: its state, never a Secret."""
    if app is None:
        return "(absent)"
    status = app.get("status", {})
    operation = status.get("operationState", {})
    return (
        f"sync={sync_status(app)} health={health_status(app)} "
        f"operation={operation.get('phase')}: {operation.get('message')!r} "
        f"conditions={[c.get('message') for c in status.get('conditions', [])]} "
        f"resources={[(r['kind'], r['name'], r.get('status'), r.get('health')) for r in status.get('resources', [])]}"
    )


def wait_established(kubectl: Kubectl, crd: str) -> None:
    """Wait until the API server serves `crd`'s kind (``kubectl wait`` fails on a new CRD)."""

    def established() -> bool:
        conditions = kubectl.json("get", "crd", crd).get("status", {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    wait_for(established, PATIENCE_SECONDS, f"CRD {crd} established", interval=0.2)


def _exists(kubectl: Kubectl, kind: str, name: str) -> bool:
    try:
        kubectl("get", kind, name)
    except KubectlError:
        return False
    return True


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class ApplicationRecorder:
    """Every version of the Applications the API server serves, from a watch, in order.

    Argo CD writes an Application's status whenever a comparison changes it, so a state
    it concluded (OutOfSync, Degraded, a new sync operation) shows up here even if it
    lasted a moment.
    """

    def __init__(self, api_client: client.ApiClient) -> None:
        self._api_client = api_client
        self.seen: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._watch: watch.Watch | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    def __enter__(self) -> Self:
        self._thread.start()
        self._started.wait(10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()
        self._thread.join(timeout=10)
        if self._error is not None:
            raise AssertionError(f"the Application watch failed: {self._error}") from self._error

    def _run(self) -> None:
        try:
            self._watch_applications()
        except Exception as error:  # noqa: BLE001 - reported by __exit__, in the test's thread
            self._error = error

    def _watch_applications(self) -> None:
        custom = client.CustomObjectsApi(self._api_client)

        def current_version() -> str:
            listing = custom.list_namespaced_custom_object(
                GROUP, VERSION, ARGOCD_NAMESPACE, "applications"
            )
            return listing["metadata"]["resourceVersion"]  # type: ignore[no-any-return]

        version = current_version()
        while not self._stop.is_set():
            self._watch = watch.Watch()
            self._started.set()
            try:
                for event in self._watch.stream(
                    custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    ARGOCD_NAMESPACE,
                    "applications",
                    resource_version=version,
                    timeout_seconds=30,
                ):
                    app = event["object"]
                    version = app["metadata"]["resourceVersion"]
                    with self._lock:
                        self.seen.append(app)
            except client.ApiException as error:
                if error.status != 410:
                    raise
                # Too old to resume: versions in between are lost, so say so.
                raise RuntimeError("the Application watch expired; versions were missed") from error
            except urllib3.exceptions.HTTPError:
                if self._stop.is_set():
                    return  # stop() closed the connection
                raise

    def of(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [app for app in self.seen if app["metadata"]["name"] == name]
