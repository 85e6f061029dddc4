"""Entries and copies belong to a credential, not to a name: tried as an impersonated tenant.

The operator runs with --tenant-label and the tenant-boundary policy in place, as
docs/security.md sets them up. A platform RegistryCredential serves victim namespaces
of another tenant; the attacking tenant has `edit` in its own namespaces only.

These tests run on a control plane of their own, with an operator of their own
configured for tenants: the end-to-end tier's session operator must not act here.
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client, watch

from e2e.conftest import DEPLOY, Kubectl, OperatorHandle, poll, session_identity_objects
from e2e.objects import SERVER, has_default_sa, pull_secret_names
from e2e.tenancy import TENANT_LABEL, TenantWorld, apply_objects, bounded_world, refused
from regcred.config import OperatorConfig
from regcred.kube.paths import credential_key
from regcred.models import API_GROUP, API_VERSION, TENANT_KIND, TENANT_PLURAL
from regcred.planning.plan import ADDED_PULL_SECRETS_ANNOTATION
from security.conftest import install_crds, own_control_plane
from testcluster import Cluster

pytestmark = pytest.mark.e2e

PLATFORM_SECRET = "platform-pull"
SELECTION_LABEL = "regcred.dev/pull-from"
RESYNC_SECONDS = 2.0
# Namespace and name of a TenantRegistryCredential together must fit a label (63).
LONG_NAMESPACE_LENGTH = 56
# Records a tenant writes naming credentials that do not exist.
KEYS_WRITTEN = 200


# -- a control plane and an operator for tenants, for this module alone ------------------
cluster = own_control_plane("these tests run their own operator, which must be the only one: they need a local control plane")



@pytest.fixture(scope="module")
def operator(cluster: Cluster, kubectl: Kubectl) -> Iterator[OperatorHandle]:
    install_crds(kubectl)
    namespace = f"regcred-sec-{uuid.uuid4().hex[:8]}"
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    # deploy/'s RBAC: among it, the roles that give `edit` TenantRegistryCredentials.
    deployed = [doc for doc in yaml.safe_load_all(kubectl("kustomize", str(DEPLOY)).stdout) if doc]
    apply_objects(kubectl, session_identity_objects(deployed, namespace))
    config = OperatorConfig(
        operator_namespace=namespace, tenant_label=TENANT_LABEL, resync_seconds=RESYNC_SECONDS,
        status_debounce_seconds=0.2,
    )
    handle = OperatorHandle(config, cluster.kubeconfig)
    handle.start()
    yield handle
    handle.stop()


@pytest.fixture
def world(cluster: Cluster, kubectl: Kubectl, operator: OperatorHandle, tmp_path: Path) -> Iterator[TenantWorld]:
    """Tenants under the tenant-boundary policy: they cannot set the tenant label themselves."""
    with bounded_world(cluster, kubectl, tmp_path, poll) as world:
        yield world


# -- the platform, the victim and the attacker ---------------------------------------------
def admin_namespace(world: TenantWorld, name: str, labels: dict[str, str]) -> str:
    """A namespace as the platform made it (labels tenants cannot set)."""
    world.cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels)))
    world.namespaces.append(name)
    poll(lambda: has_default_sa(world.cluster, name), what=f"the default ServiceAccount in {name}")
    return name


def platform_credential(cluster: Cluster, operator: OperatorHandle, selection: str) -> str:
    """The platform's RegistryCredential, with its own password, serving `selection`'s namespaces."""
    source = f"platform-pw-{uuid.uuid4().hex[:6]}"
    cluster.core.create_namespaced_secret(operator.config.operator_namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name=source), data={"password": base64.b64encode(b"platform-pw").decode()},
    ))
    name = f"platform-{uuid.uuid4().hex[:6]}"
    cluster.custom.create_cluster_custom_object(API_GROUP, API_VERSION, "registrycredentials", {
        "apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "RegistryCredential",
        "metadata": {"name": name},
        "spec": {
            "registries": [{"server": SERVER, "username": "platform", "passwordSecretRef": {"name": source}}],
            "namespaceSelector": {"matchLabels": {SELECTION_LABEL: selection}},
            "secretName": PLATFORM_SECRET,
        },
    })
    return name


def delete_platform_credential(cluster: Cluster, name: str) -> None:
    cluster.custom.delete_cluster_custom_object(API_GROUP, API_VERSION, "registrycredentials", name)
    poll(lambda: not cluster.custom.list_cluster_custom_object(
        API_GROUP, API_VERSION, "registrycredentials", field_selector=f"metadata.name={name}")["items"],
        timeout=60, what="the platform credential's cleanup")


class Attacker:
    """The tenant user, acting in its home namespace only (`edit` there)."""

    def __init__(self, world: TenantWorld, home: str) -> None:
        self.world = world
        self.home = home
        world.grant_edit(home)
        secret = client.V1Secret(metadata=client.V1ObjectMeta(name="tenant-pw"),
                                 data={"password": base64.b64encode(b"tenant-pw").decode()})
        poll(lambda: refused(lambda: world.tenant.create_namespaced_secret(home, secret)) is None,
             what="the tenant's edit rights to take effect")

    def create_credential(self, name: str, **spec: object) -> None:
        body = {
            "apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": TENANT_KIND,
            "metadata": {"name": name, "namespace": self.home},
            "spec": {
                "registries": [{"server": SERVER, "username": "tenant", "passwordSecretRef": {"name": "tenant-pw"}}],
                **spec,
            },
        }
        self.world.tenant_custom.create_namespaced_custom_object(API_GROUP, API_VERSION, self.home, TENANT_PLURAL, body)

    def status(self, name: str) -> dict | None:
        try:
            body = self.world.cluster.custom.get_namespaced_custom_object(
                API_GROUP, API_VERSION, self.home, TENANT_PLURAL, name
            )
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise
        return body.get("status") or {}

    def delete_credential(self, name: str) -> None:
        self.world.tenant_custom.delete_namespaced_custom_object(API_GROUP, API_VERSION, self.home, TENANT_PLURAL, name)
        poll(lambda: self.status(name) is None, timeout=60, what=f"the tenant's {name} to be cleaned up and gone")


class EntryWatch:
    """Watches a namespace's default ServiceAccount, noting every version of it that lacks `entry`.

    A watch sees each version the API server stores, so a removal undone a moment later
    is seen as well.
    """

    def __init__(self, cluster: Cluster, namespace: str, entry: str) -> None:
        self.cluster, self.namespace, self.entry = cluster, namespace, entry
        self.versions = 0
        self.labels: dict[str, str] = {}
        self.missing: list[list[str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._resource_version = cluster.core.read_namespaced_service_account("default", namespace).metadata.resource_version

    def _run(self) -> None:
        while not self._stop.is_set():
            stream = watch.Watch().stream(
                self.cluster.core.list_namespaced_service_account, self.namespace,
                field_selector="metadata.name=default", resource_version=self._resource_version, timeout_seconds=1,
            )
            for event in stream:
                account = event["object"]
                self._resource_version = account.metadata.resource_version
                self.versions += 1
                self.labels = dict(account.metadata.labels or {})
                names = [ref.name for ref in account.image_pull_secrets or []]
                if event["type"] == "DELETED" or self.entry not in names:
                    self.missing.append(names)

    def __enter__(self) -> EntryWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)


# -- the attacks ---------------------------------------------------------------------------
def test_a_tenant_credential_named_like_the_platforms_secret_never_strips_its_entry_elsewhere(
    cluster, operator, world
):
    suffix = uuid.uuid4().hex[:6]
    victim = admin_namespace(world, f"victim-{suffix}", {TENANT_LABEL: f"victim-{suffix}", SELECTION_LABEL: suffix})
    platform = platform_credential(cluster, operator, suffix)
    poll(lambda: PLATFORM_SECRET in pull_secret_names(cluster, victim), what="the platform's entry in the victim")

    # Namespace and name exceed the label limit: the credential can never be served.
    home_name = f"att-{suffix}-" + "x" * (LONG_NAMESPACE_LENGTH - len(f"att-{suffix}-"))
    home = admin_namespace(world, home_name, {TENANT_LABEL: f"attacker-{suffix}"})
    assert len(credential_key(home, PLATFORM_SECRET)) > 63
    attacker = Attacker(world, home)

    with EntryWatch(cluster, victim, PLATFORM_SECRET) as entries:
        attacker.create_credential(PLATFORM_SECRET)
        poll(
            lambda: any("at most 62" in c["message"] for c in (attacker.status(PLATFORM_SECRET) or {}).get("conditions", [])),
            what="the status to say the credential's key is too long",
        )
        attacker.delete_credential(PLATFORM_SECRET)
        # A change to the victim's account after the deletion: the watch has seen everything before it.
        cluster.core.patch_namespaced_service_account("default", victim, {"metadata": {"labels": {"probe": suffix}}})
        poll(lambda: entries.labels.get("probe") == suffix, what="the watch to see the probe")
    assert entries.missing == [], f"the platform's entry was missing from {len(entries.missing)} versions of the account"
    delete_platform_credential(cluster, platform)


def test_a_tenant_credential_with_the_platforms_secret_name_works_in_its_tenant_only(cluster, operator, world):
    suffix = uuid.uuid4().hex[:6]
    victims = [
        admin_namespace(world, f"victim-{suffix}-{index}", {TENANT_LABEL: f"victim-{suffix}", SELECTION_LABEL: suffix})
        for index in range(4)
    ]
    platform = platform_credential(cluster, operator, suffix)
    for namespace in victims:
        poll(lambda ns=namespace: PLATFORM_SECRET in pull_secret_names(cluster, ns), what=f"the platform's entry in {namespace}")
    tenant = f"attacker-{suffix}"
    home = admin_namespace(world, f"att-{suffix}", {TENANT_LABEL: tenant})
    other = admin_namespace(world, f"att-{suffix}-2", {TENANT_LABEL: tenant})
    attacker = Attacker(world, home)

    attacker.create_credential("mimic", secretName=PLATFORM_SECRET)
    key = credential_key(home, "mimic")
    poll(lambda: (attacker.status("mimic") or {}).get("synced") == "2/2", what="the tenant credential serving its tenant")
    # Events in the victims' namespaces and the resyncs that follow: none of it is the tenant's work.
    for namespace in victims:
        cluster.core.create_namespaced_service_account(namespace, client.V1ServiceAccount(
            metadata=client.V1ObjectMeta(name="builder")))
        cluster.core.patch_namespace(namespace, {"metadata": {"labels": {"touched": "yes"}}})
    stats = operator.controller.stats
    passes = stats.namespace_passes
    poll(lambda: stats.namespace_passes > passes + 4 * len(victims), what="several passes over the victims")
    assert stats.namespaces_passed(key) <= {home, other}, "a tenant credential's passes left its tenant"

    attacker.delete_credential("mimic")
    for namespace in victims:
        assert PLATFORM_SECRET in pull_secret_names(cluster, namespace)
    delete_platform_credential(cluster, platform)


def test_records_naming_many_missing_credentials_cost_no_request_each(cluster, operator, world):
    # A tenant may edit its own ServiceAccounts, so it can write any number of records
    # naming credentials that do not exist: the sweep must not buy a request per key.
    suffix = uuid.uuid4().hex[:6]
    home = admin_namespace(world, f"rec-{suffix}", {TENANT_LABEL: f"recorder-{suffix}"})
    Attacker(world, home)
    keys = [f"missing-{suffix}-{index}" for index in range(KEYS_WRITTEN)]
    records = ",".join(f"fake-pull={key}" for key in keys)
    requests: list[tuple[str, str]] = []
    kube = operator.controller._client
    unwrapped = kube.request

    def counting(method: str, path: str, *args: object, **kwargs: object) -> object:
        requests.append((method, path))
        return unwrapped(method, path, *args, **kwargs)

    kube.request = counting
    try:
        world.tenant.patch_namespaced_service_account(
            "default", home, {"metadata": {"annotations": {ADDED_PULL_SECRETS_ANNOTATION: records}}}
        )
        poll(lambda: not any(key in annotation(cluster, home) for key in keys), timeout=60,
             what="the sweep to drop the records of credentials that do not exist")
    finally:
        del kube.request
    credential_reads = [path for method, path in requests if method == "GET" and "registrycredentials" in path]
    # Each sweep lists both kinds once; a request per key would be KEYS_WRITTEN of them.
    assert len(credential_reads) < KEYS_WRITTEN / 10, credential_reads[:5]


def annotation(cluster: Cluster, namespace: str) -> str:
    account = cluster.core.read_namespaced_service_account("default", namespace)
    return (account.metadata.annotations or {}).get(ADDED_PULL_SECRETS_ANNOTATION, "")
