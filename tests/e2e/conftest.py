"""The operator against a real API server: the CRD installed, the operator running in-process.

One operator serves the whole session (tests that restart it do so through the
`operator` handle). Every test makes its own namespaces and credentials with
unique names, and its credentials select only its own namespaces.
"""

from __future__ import annotations

import base64
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from regcred.config import OperatorConfig
from regcred.handlers.runner import OperatorThread
from regcred.models import API_GROUP, API_VERSION, PLURAL

REPO = Path(__file__).resolve().parents[2]
CRD_FILE = REPO / "crds" / "regcred.dev_registrycredentials.yaml"
CRD_NAME = f"{PLURAL}.{API_GROUP}"

pytestmark = pytest.mark.e2e


def poll(condition: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1, what: str = "") -> Any:
    """Poll until `condition()` is truthy and return its value; fail with `what` on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what or condition}; last value: {last!r}")


class Kubectl:
    """The project's pinned kubectl, pointed at the test cluster."""

    def __init__(self, binary: Path, kubeconfig: Path) -> None:
        self.base = [str(binary), "--kubeconfig", str(kubeconfig)]

    def __call__(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*self.base, *args], input=stdin, capture_output=True, text=True, timeout=60
        )
        if check and result.returncode != 0:
            pytest.fail(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result


@pytest.fixture(scope="session")
def wait_for() -> Callable[..., Any]:
    """`wait_for(condition, timeout=30, what="...")`: poll until truthy, return the value."""
    return poll


@pytest.fixture(scope="session")
def kubectl(cluster, control_plane_bin: Path) -> Kubectl:
    return Kubectl(control_plane_bin / "kubectl", cluster.kubeconfig)


@pytest.fixture(scope="session")
def crd_installed(cluster, kubectl: Kubectl) -> None:
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
    kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s")


@pytest.fixture(scope="session")
def operator_namespace(cluster) -> Iterator[str]:
    """The operator's own namespace for this session: where source Secrets live."""
    name = f"regcred-e2e-{uuid.uuid4().hex[:8]}"
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    cluster.core.delete_namespace(name)


class OperatorHandle:
    """The running operator; tests may stop and start it again."""

    def __init__(self, config: OperatorConfig, kubeconfig: Path) -> None:
        self.config = config
        self.kubeconfig = str(kubeconfig)
        self.thread: OperatorThread | None = None

    def start(self, config: OperatorConfig | None = None) -> None:
        self.thread = OperatorThread(config or self.config, kubeconfig=self.kubeconfig).start()

    def stop(self) -> None:
        if self.thread is not None:
            self.thread.stop()
            self.thread = None

    @property
    def controller(self):
        assert self.thread is not None, "the operator is not running"
        return self.thread.controller

    @property
    def running(self) -> bool:
        return self.thread is not None


@pytest.fixture(scope="session")
def operator(cluster, crd_installed, operator_namespace: str) -> Iterator[OperatorHandle]:
    config = OperatorConfig(
        operator_namespace=operator_namespace,
        concurrency=8,
        resync_seconds=4.0,
        status_debounce_seconds=0.2,
    )
    handle = OperatorHandle(config, cluster.kubeconfig)
    handle.start()
    yield handle
    handle.stop()


@pytest.fixture
def running_operator(operator: OperatorHandle) -> OperatorHandle:
    """The session operator, restarted first if an earlier test left it stopped."""
    if not operator.running:
        operator.start()
    return operator


class Credentials:
    """Creates RegistryCredentials for one test and deletes them (waiting for cleanup) afterwards."""

    def __init__(self, cluster, test_id: str) -> None:
        self.cluster = cluster
        self.test_id = test_id
        self.created: list[str] = []

    def create(self, spec: dict[str, Any], name: str | None = None, metadata: dict[str, Any] | None = None) -> str:
        name = name or f"cred-{uuid.uuid4().hex[:8]}"
        body = {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": "RegistryCredential",
            "metadata": {"name": name, **(metadata or {})},
            "spec": spec,
        }
        self.cluster.custom.create_cluster_custom_object(API_GROUP, API_VERSION, PLURAL, body)
        self.created.append(name)
        return name

    def get(self, name: str) -> dict[str, Any]:
        return self.cluster.custom.get_cluster_custom_object(API_GROUP, API_VERSION, PLURAL, name)

    def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        self.cluster.custom.patch_cluster_custom_object(
            API_GROUP, API_VERSION, PLURAL, name, {"spec": spec}
        )

    def delete(self, name: str, wait: bool = True) -> None:
        try:
            self.cluster.custom.delete_cluster_custom_object(API_GROUP, API_VERSION, PLURAL, name)
        except client.ApiException as error:
            if error.status != 404:
                raise
        if wait:
            poll(lambda: not self.exists(name), timeout=60, what=f"credential {name} to be deleted")

    def exists(self, name: str) -> bool:
        try:
            self.get(name)
            return True
        except client.ApiException as error:
            if error.status == 404:
                return False
            raise

    def status(self, name: str) -> dict[str, Any]:
        return self.get(name).get("status") or {}

    def condition(self, name: str, kind: str) -> dict[str, Any] | None:
        for condition in self.status(name).get("conditions", []):
            if condition["type"] == kind:
                return condition
        return None

    def wait_ready(self, name: str, timeout: float = 60) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            body = self.get(name)
            status = body.get("status") or {}
            condition = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), None)
            fresh = status.get("observedGeneration") == body["metadata"]["generation"]
            return status if fresh and condition and condition["status"] == "True" else None

        return poll(ready, timeout=timeout, what=f"{name} to be Ready")


@pytest.fixture
def credentials(cluster, running_operator) -> Iterator[Credentials]:
    factory = Credentials(cluster, uuid.uuid4().hex[:8])
    yield factory
    if not running_operator.running:
        running_operator.start()
    for name in factory.created:
        factory.delete(name)


class SourceSecrets:
    """Source Secrets in the operator's namespace, removed after the test."""

    def __init__(self, cluster, namespace: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.created: list[tuple[str, str]] = []

    def create(
        self,
        data: dict[str, bytes | str],
        name: str | None = None,
        type_: str = "Opaque",
        namespace: str | None = None,
    ) -> str:
        name = name or f"src-{uuid.uuid4().hex[:8]}"
        namespace = namespace or self.namespace
        body = client.V1Secret(
            metadata=client.V1ObjectMeta(name=name),
            type=type_,
            data={key: _b64(value) for key, value in data.items()},
        )
        self.cluster.core.create_namespaced_secret(namespace, body)
        self.created.append((namespace, name))
        return name

    def replace_data(self, name: str, data: dict[str, bytes | str], namespace: str | None = None) -> None:
        self.cluster.core.patch_namespaced_secret(
            name, namespace or self.namespace, {"data": {k: _b64(v) for k, v in data.items()}}
        )

    def delete(self, name: str, namespace: str | None = None) -> None:
        self.cluster.core.delete_namespaced_secret(name, namespace or self.namespace)

    def cleanup(self) -> None:
        for namespace, name in self.created:
            try:
                self.cluster.core.delete_namespaced_secret(name, namespace)
            except client.ApiException as error:
                if error.status != 404:
                    raise


def _b64(value: bytes | str) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode()


@pytest.fixture
def sources(cluster, operator_namespace: str) -> Iterator[SourceSecrets]:
    factory = SourceSecrets(cluster, operator_namespace)
    yield factory
    factory.cleanup()
