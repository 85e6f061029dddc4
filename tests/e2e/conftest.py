"""The operator against a real API server: the CRD installed, the operator running in-process.

One operator serves the whole session (tests that restart it do so through the
`operator` handle). Every test makes its own namespaces and credentials with
unique names, and its credentials select only its own namespaces.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.config import new_client_from_config

from regcred.config import OperatorConfig
from regcred.handlers.runner import OperatorThread
from regcred.models import API_GROUP, API_VERSION, PLURAL, TENANT_PLURAL

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "crds"
CRD_NAMES = [f"{PLURAL}.{API_GROUP}", f"{TENANT_PLURAL}.{API_GROUP}"]
DEPLOY = REPO / "deploy"
RESTART_STUCK_PODS_COMPONENT = DEPLOY / "components" / "restart-stuck-pods"
DEPLOYED_NAMESPACE = "regcred-system"
OPERATOR_ACCOUNT = "regcred-operator"
IDENTITY_KINDS = {
    "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
    # The policy that fences the operator's writes beyond RBAC (deploy/base/operator-writes.yaml).
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
}
TOKEN_SECONDS = 6 * 3600  # outlives a session

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
    kubectl("apply", "--server-side", "--force-conflicts", "-k", str(CRDS))
    kubectl("wait", "--for=condition=Established", *(f"crd/{name}" for name in CRD_NAMES), "--timeout=60s")


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
        assert self.thread is None, "the operator is already running"
        self.thread = OperatorThread(config or self.config, kubeconfig=self.kubeconfig).start()

    def stop(self) -> None:
        if self.thread is not None:
            self.thread.stop()
            self.thread = None

    def restart(self, **settings: Any) -> OperatorHandle:
        """Stop, then start with its own configuration changed by `settings`."""
        self.stop()
        self.start(self.config.model_copy(update=settings))
        return self

    @property
    def controller(self):
        assert self.thread is not None, "the operator is not running"
        return self.thread.controller

    @property
    def running(self) -> bool:
        return self.thread is not None


def service_account_username(namespace: str) -> str:
    """Who the API server says the operator's ServiceAccount in `namespace` is."""
    return f"system:serviceaccount:{namespace}:{OPERATOR_ACCOUNT}"


def session_identity_objects(
    deployed: list[dict[str, Any]], namespace: str
) -> list[dict[str, Any]]:
    """deploy/'s ServiceAccount, RBAC and write policy, moved from regcred-system into `namespace`.

    Every other name gets `namespace` as a suffix, so that this session's grants (some
    cluster-scoped, some in `default`) replace neither a real installation's nor another
    session's; the policy fences this session's ServiceAccount instead of the deployed one.
    """
    objects = []
    for manifest in deployed:
        if manifest["kind"] not in IDENTITY_KINDS:
            continue
        moved = {**manifest, "metadata": {**manifest["metadata"]}}
        if moved["metadata"].get("namespace") == DEPLOYED_NAMESPACE:
            moved["metadata"]["namespace"] = namespace
        if moved["kind"] != "ServiceAccount":
            moved["metadata"]["name"] += f"-{namespace}"
        if "roleRef" in moved:
            role_name = moved["roleRef"]["name"] + f"-{namespace}"
            moved["roleRef"] = {**moved["roleRef"], "name": role_name}
            moved["subjects"] = [{**who, "namespace": namespace} for who in moved["subjects"]]
        if moved["kind"] == "ValidatingAdmissionPolicyBinding":
            moved["spec"] = {**moved["spec"], "policyName": moved["spec"]["policyName"] + f"-{namespace}"}
        if moved["kind"] == "ValidatingAdmissionPolicy":
            spec = json.dumps(moved["spec"])
            deployed_user = service_account_username(DEPLOYED_NAMESPACE)
            assert deployed_user in spec, "the write policy names the deployed ServiceAccount"
            moved["spec"] = json.loads(spec.replace(deployed_user, service_account_username(namespace)))
        objects.append(moved)
    return objects


class OperatorIdentity:
    """The operator's ServiceAccount with deploy/'s RBAC; a kubeconfig that authenticates as it."""

    def __init__(self, namespace: str, kubeconfig: Path, objects: list[dict[str, Any]]) -> None:
        self.namespace = namespace
        self.kubeconfig = kubeconfig
        self.objects = objects  # the ServiceAccount and RBAC objects as applied
        self.api_client = new_client_from_config(config_file=str(kubeconfig))

    @property
    def username(self) -> str:
        return service_account_username(self.namespace)

    def may(
        self,
        verb: str,
        resource: str,
        group: str = "",
        namespace: str | None = None,
        name: str | None = None,
    ) -> bool:
        """Whether this identity may do it, asked as itself (a SelfSubjectAccessReview)."""
        resource, _, subresource = resource.partition("/")
        attributes = client.V1ResourceAttributes(
            verb=verb, group=group, resource=resource, subresource=subresource or None,
            namespace=namespace, name=name,
        )
        review = client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes)
        )
        authorization = client.AuthorizationV1Api(self.api_client)
        return authorization.create_self_subject_access_review(review).status.allowed

    def write_refused(self, secret: client.V1Secret) -> str | None:
        """The API server's refusal to create `secret` as this identity (a dry run), or None."""
        core = client.CoreV1Api(self.api_client)
        try:
            core.create_namespaced_secret(secret.metadata.namespace, secret, dry_run="All")
        except client.ApiException as error:
            if error.status in (403, 422):
                return str(error.body)
            raise
        return None


def opaque_secret(namespace: str) -> client.V1Secret:
    """A Secret the operator never writes."""
    return client.V1Secret(
        metadata=client.V1ObjectMeta(name=f"not-a-replica-{uuid.uuid4().hex[:8]}", namespace=namespace),
        type="Opaque",
        string_data={"token": "not-a-pull-secret"},
    )


def token_kubeconfig(admin_kubeconfig: Path, token: str, path: Path) -> Path:
    """A kubeconfig for the admin kubeconfig's current cluster (server, CA) that sends `token`."""
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    context = next(c["context"] for c in admin["contexts"] if c["name"] == admin["current-context"])
    server = next(c for c in admin["clusters"] if c["name"] == context["cluster"])
    context = {"cluster": server["name"], "user": OPERATOR_ACCOUNT}
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [server],
        "users": [{"name": OPERATOR_ACCOUNT, "user": {"token": token}}],
        "contexts": [{"name": OPERATOR_ACCOUNT, "context": context}],
        "current-context": OPERATOR_ACCOUNT,
    }
    path.write_text(yaml.safe_dump(kubeconfig))
    return path


@contextmanager
def installed_identity(
    cluster, kubectl: Kubectl, namespace: str, directory: Path
) -> Iterator[OperatorIdentity]:
    """deploy/'s ServiceAccount, RBAC and write policy for an operator in `namespace`,
    in force; removed on exit. `directory` takes the identity's kubeconfig."""
    deployed = [doc for doc in yaml.safe_load_all(kubectl("kustomize", str(DEPLOY)).stdout) if doc]
    objects = session_identity_objects(deployed, namespace)
    manifests = yaml.safe_dump_all(objects)
    kubectl("apply", "--server-side", "-f", "-", stdin=manifests)
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=TOKEN_SECONDS)
    )
    token = cluster.core.create_namespaced_service_account_token(
        OPERATOR_ACCOUNT, namespace, request
    ).status.token
    kubeconfig = token_kubeconfig(cluster.kubeconfig, token, directory / "kubeconfig")
    identity = OperatorIdentity(namespace, kubeconfig, objects)
    try:
        # The authorizer learns bindings from a watch: wait for a cluster-wide and a namespaced one.
        poll(
            lambda: identity.may("list", "secrets")
            and identity.may("create", "leases", "coordination.k8s.io", namespace=namespace),
            what="the operator's RBAC to take effect",
        )
        # So does the admission plugin learn policies: wait until the write policy refuses.
        poll(lambda: identity.write_refused(opaque_secret(namespace)), what="the write policy to take effect")
        yield identity
    finally:
        identity.api_client.close()
        kubectl("delete", "--ignore-not-found", "--wait=false", "-f", "-", stdin=manifests)


@pytest.fixture(scope="session")
def operator_identity(
    cluster, kubectl: Kubectl, operator_namespace: str, tmp_path_factory
) -> Iterator[OperatorIdentity]:
    """Who the session's operator runs as: deploy/'s ServiceAccount, RBAC and write policy, nothing more."""
    with installed_identity(cluster, kubectl, operator_namespace, tmp_path_factory.mktemp("identity")) as identity:
        yield identity


@contextmanager
def stuck_pod_rights_for(kubectl: Kubectl, identity: OperatorIdentity) -> Iterator[None]:
    """The Pod rights of deploy/components/restart-stuck-pods, granted to `identity` while
    in the block (spec.restartStuckPods needs them; the base grants none)."""
    component = [doc for doc in yaml.safe_load_all((RESTART_STUCK_PODS_COMPONENT / "rbac.yaml").read_text()) if doc]
    manifests = yaml.safe_dump_all(session_identity_objects(component, identity.namespace))
    kubectl("apply", "--server-side", "-f", "-", stdin=manifests)
    poll(lambda: identity.may("list", "pods") and identity.may("delete", "pods"), what="the Pod rights to take effect")
    try:
        yield
    finally:
        kubectl("delete", "--ignore-not-found", "-f", "-", stdin=manifests)
        poll(lambda: not identity.may("list", "pods"), what="the Pod rights to be revoked")


@pytest.fixture
def stuck_pod_rights(kubectl: Kubectl, operator_identity: OperatorIdentity) -> Iterator[None]:
    """The session's operator with the Pod rights of restart-stuck-pods, for one test."""
    with stuck_pod_rights_for(kubectl, operator_identity):
        yield


@pytest.fixture(scope="session")
def operator(
    cluster, crd_installed, operator_identity: OperatorIdentity
) -> Iterator[OperatorHandle]:
    """The session's operator, authenticated as deploy/'s ServiceAccount: its RBAC must suffice."""
    config = OperatorConfig(
        operator_namespace=operator_identity.namespace,
        concurrency=8,
        resync_seconds=4.0,
        status_debounce_seconds=0.2,
    )
    handle = OperatorHandle(config, operator_identity.kubeconfig)
    handle.start()
    yield handle
    handle.stop()


@pytest.fixture
def running_operator(operator: OperatorHandle) -> OperatorHandle:
    """The session operator, restarted first if an earlier test left it stopped."""
    if not operator.running:
        operator.start()
    return operator


@pytest.fixture
def operator_with(running_operator: OperatorHandle) -> Iterator[Callable[..., OperatorHandle]]:
    """`operator_with(**settings)` restarts the session operator with those OperatorConfig changes.

    Afterwards it is restarted with its own configuration again.
    """
    yield running_operator.restart
    running_operator.restart()


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
