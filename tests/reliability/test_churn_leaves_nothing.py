"""Nothing is left behind by timing: credentials created and deleted as fast as the API
server takes them, while the operator runs and while it is killed and restarted.

A credential deleted before kopf put its finalizer on it is gone at once: the
controller must not have written for it yet. A credential that vanished without its
cleanup (its finalizer removed by hand while the operator was down) leaves replicas
and ServiceAccount records, which the operator removes at start.
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from harness import OperatorProcess, env_int, managed_replicas, pull_secret_entries, recorded_entries, service_accounts_in
from kubernetes import client

from e2e.conftest import poll
from e2e.objects import SERVER, tenant_spec
from regcred.kube.paths import credential_key
from regcred.models import API_GROUP, API_VERSION, PLURAL, TENANT_PLURAL
from regcred.planning.plan import CREDENTIAL_LABEL
from testcluster import Cluster

TENANT_LABEL = "tenant"
CHURN = env_int("REGCRED_CHURN_CREDENTIALS", 50)


@dataclass
class Churn:
    """One tenant's namespaces (the first is home to its TenantRegistryCredentials)."""

    cluster: Cluster
    tenant: str
    namespaces: list[str]
    platform_password: str
    keys: set[str]  # every credential key made here
    secret_names: set[str]

    @property
    def home(self) -> str:
        return self.namespaces[0]

    def create_cluster_credential(self, name: str) -> None:
        body = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "RegistryCredential", "metadata": {"name": name},
                "spec": tenant_spec(self.tenant, self.platform_password, serviceAccounts=["*"])}
        self._made(None, name)
        self.cluster.custom.create_cluster_custom_object(API_GROUP, API_VERSION, PLURAL, body)

    def create_tenant_credential(self, name: str) -> None:
        spec = {"registries": [{"server": SERVER, "username": "robot", "passwordSecretRef": {"name": "pw"}}],
                "serviceAccounts": ["*"]}
        body = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "TenantRegistryCredential",
                "metadata": {"name": name, "namespace": self.home}, "spec": spec}
        self._made(self.home, name)
        self.cluster.custom.create_namespaced_custom_object(API_GROUP, API_VERSION, self.home, TENANT_PLURAL, body)

    def _made(self, namespace: str | None, name: str) -> None:
        self.keys.add(credential_key(namespace, name))
        self.secret_names.add(name)

    def delete(self, namespace: str | None, name: str) -> None:
        try:
            if namespace is None:
                self.cluster.custom.delete_cluster_custom_object(API_GROUP, API_VERSION, PLURAL, name)
            else:
                self.cluster.custom.delete_namespaced_custom_object(API_GROUP, API_VERSION, namespace, TENANT_PLURAL, name)
        except client.ApiException as error:
            if error.status != 404:
                raise

    def churn(self, label: str) -> None:
        """Create and at once delete CHURN credentials of each kind, several at a time."""

        def one(index: int) -> None:
            cluster_name, tenant_name = f"{self.tenant}-{label}-c{index}", f"{label}-t{index}"
            self.create_cluster_credential(cluster_name)
            self.create_tenant_credential(tenant_name)
            self.delete(None, cluster_name)
            self.delete(self.home, tenant_name)

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(one, range(CHURN)))

    def remaining_credentials(self) -> list[str]:
        cluster_ones = self.cluster.custom.list_cluster_custom_object(API_GROUP, API_VERSION, PLURAL)["items"]
        tenant_ones = self.cluster.custom.list_namespaced_custom_object(API_GROUP, API_VERSION, self.home, TENANT_PLURAL)["items"]
        return [
            key for item in [*cluster_ones, *tenant_ones]
            if (key := credential_key(item["metadata"].get("namespace"), item["metadata"]["name"])) in self.keys
        ]

    def traces(self) -> list[str]:
        """Replicas, entries and records of these credentials still in the cluster."""
        found = [
            f"replica {namespace}/{name}" for (namespace, name), secret in managed_replicas(self.cluster).items()
            if secret.metadata.labels.get(CREDENTIAL_LABEL) in self.keys
        ]
        for account in service_accounts_in(self.cluster, set(self.namespaces)):
            where = f"{account.metadata.namespace}/{account.metadata.name}"
            found += [f"entry {name} in {where}" for name in pull_secret_entries(account) if name in self.secret_names]
            # Read as text: `name=credential` records, or older `name` ones.
            records = [record.strip() for record in (recorded_entries(account) or "").split(",")]
            found += [
                f"record {record} in {where}" for record in records
                if set(record.split("=")) & (self.keys | self.secret_names)
            ]
        return found


@pytest.fixture
def churn(cluster: Cluster, operator_namespace: str, sources, operator_process: OperatorProcess) -> Iterator[Churn]:
    tenant = f"churn-{uuid.uuid4().hex[:6]}"
    namespaces = [f"{tenant}-{index}" for index in range(3)]
    for name in namespaces:
        cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={TENANT_LABEL: tenant})))
    cluster.core.create_namespaced_secret(namespaces[0], client.V1Secret(
        metadata=client.V1ObjectMeta(name="pw"), data={"password": base64.b64encode(b"tenant-pw").decode()}))
    password = sources.create({"password": "platform-pw"})
    yield Churn(cluster, tenant, namespaces, password, set(), set())
    for name in namespaces:
        cluster.core.delete_namespace(name)


def start(operator_process: OperatorProcess) -> None:
    operator_process.start("--tenant-label", TENANT_LABEL)


def test_credentials_created_and_deleted_at_once_leave_nothing_running_or_restarting(churn, operator_process):
    start(operator_process)
    churn.churn("running")

    # The same while the operator is killed and restarted under it.
    churning = threading.Thread(target=churn.churn, args=("restarting",))
    churning.start()
    for _ in range(2):
        operator_process.kill()
        start(operator_process)
    churning.join()

    poll(lambda: not churn.remaining_credentials(), timeout=180, what="every credential's cleanup to finish")
    poll(lambda: not churn.traces(), timeout=60, what="nothing of the deleted credentials to remain")


def test_a_credential_gone_without_its_cleanup_is_cleared_at_start(churn, operator_process):
    start(operator_process)
    churn.create_tenant_credential("vanished")
    churn.create_cluster_credential(f"{churn.tenant}-vanished")
    poll(lambda: len(churn.traces()) >= 2 * 3 * 3, timeout=60,
         what="both credentials' replicas, entries and records in every namespace")

    operator_process.kill()
    # The finalizer removed while no operator runs (by hand, or a finalizer race): no cleanup ran.
    for namespace, name in ((churn.home, "vanished"), (None, f"{churn.tenant}-vanished")):
        patch = {"metadata": {"finalizers": None}}
        if namespace is None:
            churn.cluster.custom.patch_cluster_custom_object(API_GROUP, API_VERSION, PLURAL, name, patch)
        else:
            churn.cluster.custom.patch_namespaced_custom_object(API_GROUP, API_VERSION, namespace, TENANT_PLURAL, name, patch)
        churn.delete(namespace, name)
    poll(lambda: not churn.remaining_credentials(), what="both credentials to be gone")
    assert churn.traces(), "the tenant credential's copies have no owner to be collected by"

    start(operator_process)
    poll(lambda: not churn.traces(), timeout=60, what="the operator to clear what they left")
