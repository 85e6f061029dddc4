"""What users finally care about, on a real node: the operator installed as the README
says runs as Pods from its own image, and a tenant's Pod pulls a private image.

The tests share one kind cluster and run in file order: the Helm install is checked
and removed first, then the kustomize install (deploy/kind) serves the rest.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from registryserver import pinned_binaries

from regcred_dev.controlplane import BuildError, KubectlError, wait_for
from regcred_dev.kind import KindCluster, load_image
from regcred_dev.kind.cluster import trust_registry
from regcred_dev.kind.registry import ContainerRegistry
from regcred_dev.kind.tenant import build_tenant_program

REPO = Path(__file__).resolve().parents[2]
OPERATOR_NAMESPACE = "regcred-system"
HELM_NAMESPACE = "regcred-helm"
DEPLOYMENT = "regcred-operator"
LEASE = "regcred-operator"
API = ("regcred.dev", "v1alpha1", "registrycredentials")
PULL_FAILURES = {"ErrImagePull", "ImagePullBackOff"}
ROLLOUT_SECONDS = 240
PULL_SECONDS = 180


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 1.0) -> Any:
    try:
        return wait_for(condition, timeout, what, interval)
    except KubectlError as error:
        pytest.fail(str(error))


class Cluster:
    """The kind cluster through the Kubernetes client, with the few reads these tests make."""

    def __init__(self, kind: KindCluster) -> None:
        self.kind = kind
        self.api_client = config.new_client_from_config(config_file=str(kind.kubeconfig))
        self.core = client.CoreV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)
        self.coordination = client.CoordinationV1Api(self.api_client)

    def operator_pods(self, namespace: str) -> list[client.V1Pod]:
        selector = f"app.kubernetes.io/name={DEPLOYMENT}"
        pods = self.core.list_namespaced_pod(namespace, label_selector=selector).items
        return [pod for pod in pods if pod.metadata.deletion_timestamp is None]

    def lease_holder(self, namespace: str) -> str:
        try:
            lease = self.coordination.read_namespaced_lease(LEASE, namespace)
        except client.ApiException as error:
            if error.status == 404:
                return ""
            raise
        return lease.spec.holder_identity or ""

    def metrics(self, namespace: str, pod: str) -> str:
        """The Pod's /metrics, through the API server's proxy to its port 8080."""
        return self.core.connect_get_namespaced_pod_proxy_with_path(
            f"{pod}:8080", namespace, "metrics"
        )

    def pods_of(self, namespace: str, app: str) -> list[client.V1Pod]:
        pods = self.core.list_namespaced_pod(namespace, label_selector=f"app={app}").items
        return [pod for pod in pods if pod.metadata.deletion_timestamp is None]

    def pull_secret_names(self, namespace: str) -> list[str]:
        account = self.core.read_namespaced_service_account("default", namespace)
        return [ref.name for ref in account.image_pull_secrets or []]

    def events_of(self, namespace: str, pod: str) -> list[str]:
        events = self.core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={pod}"
        ).items
        return [f"{event.reason}: {event.message}" for event in events]


def container_waiting_reason(pod: client.V1Pod) -> str:
    for status in pod.status.container_statuses or []:
        if status.state and status.state.waiting:
            return status.state.waiting.reason or ""
    return ""


def pod_running(pod: client.V1Pod) -> bool:
    return pod.status.phase == "Running" and all(
        status.ready for status in pod.status.container_statuses or []
    )


# -- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(kind_cluster: KindCluster) -> Iterator[Cluster]:
    wrapped = Cluster(kind_cluster)
    yield wrapped
    wrapped.api_client.close()


@pytest.fixture(scope="module")
def image_on_node(kind_cluster: KindCluster, operator_image: str) -> str:
    """The operator's image built from this checkout, loaded into the node (never pulled)."""
    load_image(kind_cluster.name, operator_image)
    return operator_image


@pytest.fixture(scope="module")
def tenant_program(tmp_path_factory) -> Path:
    """A static executable: the tenants' private image needs no base image to run."""
    try:
        return build_tenant_program(tmp_path_factory.mktemp("tenant") / "tenant-app")
    except BuildError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="module")
def registry(kind_cluster: KindCluster) -> Iterator[ContainerRegistry]:
    """The private registry on the cluster's network; the node trusts its CA for its name."""
    # Named after the cluster (regcred-test-registry), so another session cluster's run
    # on the same engine never replaces it.
    server = ContainerRegistry(f"{kind_cluster.name}-registry", kind_cluster.network, **pinned_binaries())
    server.start()
    trust_registry(kind_cluster.name, server.address, server.ca_file)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def private_image(registry: ContainerRegistry, tenant_program: Path) -> str:
    return registry.push_program("tenants/app", "v1", tenant_program)


@pytest.fixture(scope="module")
def kustomize_install(kubectl, image_on_node: str) -> str:
    """`kubectl apply --server-side -k deploy/kind`, as the README says, rolled out."""
    # --force-conflicts: the Helm test before left the CRD, owned by another field manager.
    kubectl("apply", "--server-side", "--force-conflicts", "-k", str(REPO / "deploy" / "kind"))
    kubectl("rollout", "status", f"deployment/{DEPLOYMENT}", "--namespace", OPERATOR_NAMESPACE,
            f"--timeout={ROLLOUT_SECONDS}s", timeout=ROLLOUT_SECONDS + 30)
    return OPERATOR_NAMESPACE


class Tenant:
    """A tenant namespace (labelled `tenant=<id>`) with Deployments of the private image."""

    def __init__(self, cluster: Cluster, tenant: str) -> None:
        self.cluster = cluster
        self.label = tenant
        self.namespaces: list[str] = []
        self.credential = ""
        self.source = ""

    def new_namespace(self) -> str:
        name = f"tenant-{self.label}-{len(self.namespaces)}"
        self.cluster.core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"tenant": self.label}))
        )
        self.namespaces.append(name)
        # The admission plugin copies the default ServiceAccount's pull secrets: it must exist.
        wait_until(lambda: self._has_default_account(name), 60, f"{name}'s default ServiceAccount")
        return name

    def _has_default_account(self, namespace: str) -> bool:
        try:
            self.cluster.core.read_namespaced_service_account("default", namespace)
            return True
        except client.ApiException as error:
            if error.status == 404:
                return False
            raise

    def deploy(self, namespace: str, image: str, app: str = "app", pull_policy: str = "IfNotPresent") -> None:
        labels = {"app": app}
        container = client.V1Container(name=app, image=image, image_pull_policy=pull_policy)
        deployment = client.V1Deployment(
            metadata=client.V1ObjectMeta(name=app),
            spec=client.V1DeploymentSpec(
                replicas=1,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels),
                    spec=client.V1PodSpec(containers=[container], termination_grace_period_seconds=1),
                ),
            ),
        )
        self.cluster.apps.create_namespaced_deployment(namespace, deployment)

    def wait_pull_failure(self, namespace: str, app: str = "app") -> client.V1Pod:
        def failing() -> client.V1Pod | None:
            pods = self.cluster.pods_of(namespace, app)
            return next((pod for pod in pods if container_waiting_reason(pod) in PULL_FAILURES), None)

        return wait_until(failing, PULL_SECONDS, f"a pull failure in {namespace}")

    def wait_running(self, namespace: str, app: str = "app") -> client.V1Pod:
        def running() -> client.V1Pod | None:
            pods = self.cluster.pods_of(namespace, app)
            return next((pod for pod in pods if pod_running(pod)), None)

        return wait_until(running, PULL_SECONDS, f"{app} running in {namespace}")

    def restart(self, namespace: str, app: str = "app") -> None:
        """What a user does for a Pod admitted before the pull secret: delete it."""
        for pod in self.cluster.pods_of(namespace, app):
            self.cluster.core.delete_namespaced_pod(pod.metadata.name, namespace, grace_period_seconds=0)

    def create_credential(self, registry: ContainerRegistry, **extra: Any) -> tuple[str, str]:
        """A source Secret and a RegistryCredential selecting this tenant; return both names."""
        self.source = f"{self.label}-registry-password"
        password = client.V1Secret(
            metadata=client.V1ObjectMeta(name=self.source), string_data={"password": registry.password}
        )
        self.cluster.core.create_namespaced_secret(OPERATOR_NAMESPACE, password)
        self.credential = f"tenant-{self.label}"
        login = {"server": registry.address, "username": registry.username, "passwordSecretRef": {"name": self.source}}
        spec = {
            "registries": [login],
            "namespaceSelector": {"matchLabels": {"tenant": self.label}},
            "secretName": "private-registry",
            **extra,
        }
        body = {
            "apiVersion": f"{API[0]}/{API[1]}", "kind": "RegistryCredential",
            "metadata": {"name": self.credential}, "spec": spec,
        }
        self.cluster.custom.create_cluster_custom_object(*API, body)
        return self.credential, self.source

    def cleanup(self) -> None:
        if self.credential:
            self.cluster.custom.delete_cluster_custom_object(*API, self.credential)
            self.cluster.core.delete_namespaced_secret(self.source, OPERATOR_NAMESPACE)
        for namespace in self.namespaces:
            self.cluster.core.delete_namespace(namespace)


@pytest.fixture
def cluster_tenants(cluster: Cluster) -> Iterator[Callable[[], Tenant]]:
    """`cluster_tenants()` makes a tenant; its namespaces and credential go afterwards."""
    made: list[Tenant] = []

    def make() -> Tenant:
        made.append(Tenant(cluster, uuid.uuid4().hex[:6]))
        return made[-1]

    yield make
    for tenant in made:
        tenant.cleanup()


@pytest.fixture
def tenant(cluster_tenants: Callable[[], Tenant]) -> Tenant:
    return cluster_tenants()


def replica_password(cluster: Cluster, namespace: str) -> str:
    secret = cluster.core.read_namespaced_secret("private-registry", namespace)
    auths = json.loads(base64.b64decode(secret.data[".dockerconfigjson"]))["auths"]
    (entry,) = auths.values()
    return entry["password"]


def assert_operator_up(cluster: Cluster, namespace: str) -> None:
    """Both replicas Ready by their probes, exactly one leader, metrics served."""
    def both_ready() -> list[client.V1Pod] | None:
        pods = cluster.operator_pods(namespace)
        return pods if len(pods) == 2 and all(pod_running(pod) for pod in pods) else None

    pods = wait_until(both_ready, ROLLOUT_SECONDS, f"two Ready operator Pods in {namespace}")
    names = [pod.metadata.name for pod in pods]
    holder = wait_until(lambda: cluster.lease_holder(namespace), 60, "a leader")
    assert [name for name in names if holder.startswith(name + "-")], (holder, names)
    leaders = [name for name in names if re.search(r"^regcred_leader 1\.0$", cluster.metrics(namespace, name), re.MULTILINE)]
    assert leaders == [name for name in names if holder.startswith(name + "-")]


# -- tests ----------------------------------------------------------------------------


def test_the_helm_chart_brings_the_operator_up(cluster: Cluster, kind_cluster: KindCluster, helm_bin: Path, image_on_node: str):
    repository, tag = image_on_node.rsplit(":", 1)
    install = [str(helm_bin), "--kubeconfig", str(kind_cluster.kubeconfig)]
    subprocess.run(
        [*install, "install", "regcred-operator", str(REPO / "deploy" / "chart"),
         "--namespace", HELM_NAMESPACE, "--create-namespace",
         "--set", f"image.repository={repository}", "--set", f"image.tag={tag}", "--wait", f"--timeout={ROLLOUT_SECONDS}s"],
        check=True, capture_output=True, text=True, timeout=ROLLOUT_SECONDS + 60,
    )
    try:
        assert_operator_up(cluster, HELM_NAMESPACE)
    finally:
        subprocess.run([*install, "uninstall", "regcred-operator", "--namespace", HELM_NAMESPACE, "--wait"],
                       check=True, capture_output=True, text=True, timeout=300)
        cluster.core.delete_namespace(HELM_NAMESPACE)


def test_kubectl_apply_k_brings_the_operator_up(cluster: Cluster, kustomize_install: str):
    assert_operator_up(cluster, kustomize_install)


def test_a_tenant_pod_pulls_the_private_image_once_a_credential_selects_its_namespace(
    cluster: Cluster, kustomize_install: str, registry: ContainerRegistry, private_image: str, tenant: Tenant
):
    first = tenant.new_namespace()
    tenant.deploy(first, private_image)
    stuck = tenant.wait_pull_failure(first)
    assert any("401 Unauthorized" in event for event in cluster.events_of(first, stuck.metadata.name))

    tenant.create_credential(registry)
    wait_until(lambda: "private-registry" in cluster.pull_secret_names(first), 60, "the ServiceAccount entry")
    tenant.restart(first)  # the stuck Pod was admitted without the pull secret
    running = tenant.wait_running(first)
    assert [ref.name for ref in running.spec.image_pull_secrets] == ["private-registry"]
    assert any(event.startswith("Pulled:") for event in cluster.events_of(first, running.metadata.name))

    # A namespace made afterwards runs the image with no step of the user's.
    later = tenant.new_namespace()
    tenant.deploy(later, private_image)
    tenant.wait_running(later)


def test_a_rotated_password_reaches_new_pods_and_the_old_one_stops_working(
    cluster: Cluster, kustomize_install: str, registry: ContainerRegistry, private_image: str, tenant: Tenant
):
    namespace = tenant.new_namespace()
    _, source = tenant.create_credential(registry)
    wait_until(lambda: "private-registry" in cluster.pull_secret_names(namespace), 60, "the ServiceAccount entry")
    tenant.deploy(namespace, private_image, pull_policy="Always")
    tenant.wait_running(namespace)

    old_password = registry.change_password()
    old_login = registry.write_docker_config(registry.workdir / "old-login", password=old_password)
    refused = registry.crane(["manifest", private_image], old_login)
    assert refused.returncode != 0 and "UNAUTHORIZED" in refused.stderr

    cluster.core.patch_namespaced_secret(source, OPERATOR_NAMESPACE, {"stringData": {"password": registry.password}})
    wait_until(lambda: replica_password(cluster, namespace) == registry.password, 60, "the rotated replica")
    tenant.restart(namespace)
    tenant.wait_running(namespace)  # pulled again (Always), with the new password

    for pod in cluster.operator_pods(OPERATOR_NAMESPACE):
        log = cluster.core.read_namespaced_pod_log(pod.metadata.name, OPERATOR_NAMESPACE)
        assert old_password not in log and registry.password not in log


def test_the_standby_takes_over_when_the_leader_pod_is_deleted(
    cluster: Cluster, kustomize_install: str, registry: ContainerRegistry, tenant: Tenant
):
    first = tenant.new_namespace()
    tenant.create_credential(registry)
    wait_until(lambda: "private-registry" in cluster.pull_secret_names(first), 60, "the ServiceAccount entry")
    holder = cluster.lease_holder(OPERATOR_NAMESPACE)
    (leader,) = [pod for pod in cluster.operator_pods(OPERATOR_NAMESPACE) if holder.startswith(pod.metadata.name + "-")]
    cluster.core.delete_namespaced_pod(leader.metadata.name, OPERATOR_NAMESPACE)

    def new_holder() -> str:
        current = cluster.lease_holder(OPERATOR_NAMESPACE)
        return current if current and not current.startswith(leader.metadata.name + "-") else ""

    wait_until(new_holder, 90, "the standby to take the Lease")
    later = tenant.new_namespace()
    wait_until(lambda: "private-registry" in cluster.pull_secret_names(later), 90, "the new leader to serve")

    # Settled: no replica or ServiceAccount is written again (no ping-pong between Pods).
    def versions() -> list[str]:
        return [
            obj.metadata.resource_version
            for namespace in (first, later)
            for obj in (
                cluster.core.read_namespaced_secret("private-registry", namespace),
                cluster.core.read_namespaced_service_account("default", namespace),
            )
        ]

    settled = versions()
    time.sleep(10)
    assert versions() == settled


def test_pods_stuck_before_the_credential_recover_with_restart_stuck_pods_and_stay_reported_without(
    cluster: Cluster, kind_cluster: KindCluster, kustomize_install: str,
    registry: ContainerRegistry, private_image: str, cluster_tenants: Callable[[], Tenant],
):
    healed, left = cluster_tenants(), cluster_tenants()
    healed_namespace, left_namespace = healed.new_namespace(), left.new_namespace()
    for tenant, namespace in ((healed, healed_namespace), (left, left_namespace)):
        tenant.deploy(namespace, private_image)
        tenant.wait_pull_failure(namespace)

    healed.create_credential(registry, restartStuckPods=True)
    left_credential, _ = left.create_credential(registry)
    # No step of the user's: the operator deletes the stuck Pod once, its ReplicaSet recreates it.
    healed.wait_running(healed_namespace)

    wait_until(lambda: "private-registry" in cluster.pull_secret_names(left_namespace), 60, "the ServiceAccount entry")
    time.sleep(15)  # longer than a pull back-off step: a restart would have happened by now
    (stuck,) = cluster.pods_of(left_namespace, "app")
    assert container_waiting_reason(stuck) in PULL_FAILURES
    report = subprocess.run(
        [sys.executable, "-m", "regcred.plugin", "status", left_credential,
         "--kubeconfig", str(kind_cluster.kubeconfig)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert stuck.metadata.name in report.stdout, report.stdout + report.stderr
    assert "restartStuckPods" in report.stdout
