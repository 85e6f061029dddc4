"""TenantRegistryCredentials on the real API server, created by an impersonated tenant user.

The operator runs with --tenant-label. Tenant A's credential lives in one of A's
namespaces; tenant B has namespaces of its own; platform credentials are cluster-scoped.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from objects import SERVER, kubectl_regcred, pull_secret_names, replica
from tenancy import TENANT_LABEL, TenantWorld, refused

from e2e.conftest import poll
from regcred.models import API_GROUP, API_VERSION, TENANT_KIND, TENANT_PLURAL


class Tenant:
    """One tenant's namespaces (`home` first) and what its user does there."""

    def __init__(self, world: TenantWorld, make_namespace, name: str, count: int) -> None:
        self.world = world
        self.name = name
        self.namespaces = [make_namespace(f"tc-{name}", labels={TENANT_LABEL: name}) for _ in range(count)]
        self.home = self.namespaces[0]
        world.grant_edit(self.home)

    def create_secret(self, name: str, password: str) -> None:
        body = client.V1Secret(
            metadata=client.V1ObjectMeta(name=name),
            data={"password": base64.b64encode(password.encode()).decode()},
        )
        poll(lambda: refused(lambda: self.world.tenant.create_namespaced_secret(self.home, body)) is None,
             what="the tenant's edit rights to take effect")

    def credential_body(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": TENANT_KIND,
            "metadata": {"name": name, "namespace": self.home},
            "spec": spec,
        }

    def create_credential(self, name: str, spec: dict[str, Any]) -> None:
        self.world.tenant_custom.create_namespaced_custom_object(
            API_GROUP, API_VERSION, self.home, TENANT_PLURAL, self.credential_body(name, spec)
        )

    def status(self, name: str) -> dict[str, Any]:
        body = self.world.cluster.custom.get_namespaced_custom_object(API_GROUP, API_VERSION, self.home, TENANT_PLURAL, name)
        return body.get("status") or {}

    def delete_credential(self, name: str) -> None:
        self.world.tenant_custom.delete_namespaced_custom_object(API_GROUP, API_VERSION, self.home, TENANT_PLURAL, name)

    def credential_gone(self, name: str) -> bool:
        try:
            self.status(name)
            return False
        except client.ApiException as error:
            return error.status == 404


def pull_spec(password_secret: str, **more: Any) -> dict[str, Any]:
    return {"registries": [{"server": SERVER, "username": "robot", "passwordSecretRef": {"name": password_secret}}], **more}


def served(cluster, namespace: str, secret_name: str) -> bool:
    return replica(cluster, namespace, secret_name) is not None and secret_name in pull_secret_names(cluster, namespace)


def bare(cluster, namespace: str, secret_name: str) -> bool:
    return replica(cluster, namespace, secret_name) is None and secret_name not in pull_secret_names(cluster, namespace)


@pytest.fixture
def world(cluster, operator_with) -> Iterator[TenantWorld]:
    operator_with(tenant_label=TENANT_LABEL)
    world = TenantWorld(cluster)
    yield world
    world.close()


@pytest.fixture
def tenants(world, make_namespace, wait_for) -> Iterator[tuple[Tenant, Tenant]]:
    suffix = uuid.uuid4().hex[:6]
    a, b = Tenant(world, make_namespace, f"a{suffix}", 2), Tenant(world, make_namespace, f"b{suffix}", 1)
    for namespace in a.namespaces + b.namespaces:
        wait_for(lambda ns=namespace: has_default_account(world.cluster, ns), what=f"default SA in {namespace}")
    yield a, b
    for tenant in (a, b):
        for item in world.cluster.custom.list_namespaced_custom_object(
            API_GROUP, API_VERSION, tenant.home, TENANT_PLURAL
        )["items"]:
            world.cluster.custom.delete_namespaced_custom_object(
                API_GROUP, API_VERSION, tenant.home, TENANT_PLURAL, item["metadata"]["name"]
            )
            wait_for(lambda name=item["metadata"]["name"], t=tenant: t.credential_gone(name), timeout=60,
                     what="cleanup of the tenant's credential")


def has_default_account(cluster, namespace: str) -> bool:
    return any(sa.metadata.name == "default" for sa in cluster.core.list_namespaced_service_account(namespace).items)


def test_a_tenant_credential_reaches_all_of_its_tenant_and_none_of_another(cluster, tenants, wait_for):
    a, b = tenants
    a.create_secret("robot-pw", "tenant-a-password")
    # Naming every namespace, and selecting B's by label, reaches A's namespaces only.
    spec = pull_spec("robot-pw", namespaces=["*"], namespaceSelector={})
    a.create_credential("pull", spec)
    for namespace in a.namespaces:
        wait_for(lambda ns=namespace: served(cluster, ns, "pull"), what=f"A's copy in {namespace}")
    wait_for(lambda: a.status("pull").get("synced") == "2/2", what="A's status 2/2")
    assert bare(cluster, b.home, "pull")
    copy = replica(cluster, a.namespaces[1], "pull")
    assert copy.metadata.labels["regcred.dev/credential"] == f"{a.home}_pull"
    assert not copy.metadata.owner_references, "a namespaced owner cannot own copies in other namespaces"


def test_a_tenant_cannot_read_a_secret_outside_its_namespace(tenants, operator_namespace):
    a, _ = tenants
    spec = {"registries": [{"server": SERVER, "username": "robot",
                            "passwordSecretRef": {"name": "platform-pw", "namespace": operator_namespace}}]}
    message = refused(lambda: a.create_credential("stolen", spec))
    assert message and "spec.registries[0].passwordSecretRef.namespace" in message
    assert "own namespace" in message


def test_deleting_a_tenant_credential_removes_only_what_it_added(
    cluster, tenants, credentials, sources, wait_for
):
    a, b = tenants
    a.create_secret("robot-pw", "tenant-a-password")
    a.create_credential("pull", pull_spec("robot-pw"))
    b_password = sources.create({"password": "platform-password"})
    platform = credentials.create({**pull_spec(b_password), "namespaceSelector": {"matchLabels": {TENANT_LABEL: b.name}},
                                   "secretName": "platform-pull"})
    # B's own credential, created by a cluster admin in B's namespace.
    b_secret = client.V1Secret(metadata=client.V1ObjectMeta(name="robot-pw"),
                               data={"password": base64.b64encode(b"tenant-b").decode()})
    cluster.core.create_namespaced_secret(b.home, b_secret)
    cluster.custom.create_namespaced_custom_object(
        API_GROUP, API_VERSION, b.home, TENANT_PLURAL, b.credential_body("pull", pull_spec("robot-pw"))
    )
    for namespace in a.namespaces:
        wait_for(lambda ns=namespace: served(cluster, ns, "pull"), what=f"A's copy in {namespace}")
    wait_for(lambda: served(cluster, b.home, "pull") and served(cluster, b.home, "platform-pull"), what="B's copies")
    b_copy = replica(cluster, b.home, "pull")

    a.delete_credential("pull")
    wait_for(lambda: a.credential_gone("pull"), timeout=60, what="A's credential to go")
    for namespace in a.namespaces:
        assert bare(cluster, namespace, "pull")
    assert served(cluster, b.home, "pull") and served(cluster, b.home, "platform-pull")
    assert replica(cluster, b.home, "pull").metadata.resource_version == b_copy.metadata.resource_version
    credentials.delete(platform)


def test_a_namespace_moved_to_another_tenant_changes_hands(cluster, tenants, wait_for):
    a, b = tenants
    a.create_secret("robot-pw", "tenant-a-password")
    a.create_credential("pull", pull_spec("robot-pw", secretName="a-pull"))
    b_secret = client.V1Secret(metadata=client.V1ObjectMeta(name="robot-pw"),
                               data={"password": base64.b64encode(b"tenant-b").decode()})
    cluster.core.create_namespaced_secret(b.home, b_secret)
    cluster.custom.create_namespaced_custom_object(
        API_GROUP, API_VERSION, b.home, TENANT_PLURAL, b.credential_body("pull", pull_spec("robot-pw", secretName="b-pull"))
    )
    moved = a.namespaces[1]
    wait_for(lambda: served(cluster, moved, "a-pull") and bare(cluster, moved, "b-pull"), what="A serving the namespace")

    cluster.core.patch_namespace(moved, {"metadata": {"labels": {TENANT_LABEL: b.name}}})  # as a platform admin
    wait_for(lambda: bare(cluster, moved, "a-pull") and served(cluster, moved, "b-pull"), what="the namespace to change hands")
    assert served(cluster, a.home, "a-pull")


def test_a_name_a_platform_credential_uses_is_a_reported_conflict(cluster, tenants, credentials, sources, wait_for):
    a, _ = tenants
    platform_password = sources.create({"password": "platform-password"})
    platform = credentials.create({**pull_spec(platform_password), "secretName": "pull",
                                   "namespaceSelector": {"matchLabels": {TENANT_LABEL: a.name}}})
    wait_for(lambda: all(served(cluster, ns, "pull") for ns in a.namespaces), what="the platform's copies")
    platform_copies = {ns: replica(cluster, ns, "pull").metadata.resource_version for ns in a.namespaces}
    a.create_secret("robot-pw", "tenant-a-password")
    a.create_credential("pull", pull_spec("robot-pw"))
    wait_for(lambda: len(a.status("pull").get("conflictedNamespaces", [])) == 2, what="A's conflicts reported")
    assert {ns: replica(cluster, ns, "pull").metadata.resource_version for ns in a.namespaces} == platform_copies
    credentials.delete(platform)


def test_the_plugin_plans_and_reports_tenant_credentials(cluster, tenants, wait_for, operator_namespace):
    a, b = tenants
    a.create_secret("robot-pw", "tenant-a-password")
    a.create_credential("pull", pull_spec("robot-pw"))
    wait_for(lambda: a.status("pull").get("synced") == "2/2", what="A's status 2/2")
    settings = ("--tenant-label", TENANT_LABEL, "--operator-namespace", operator_namespace)

    status = kubectl_regcred(cluster, "status", "pull", "-n", a.home, "-o", "json", *settings)
    assert status.returncode == 0, status.stderr
    (report,) = json.loads(status.stdout)
    assert (report["kind"], report["namespace"], report["credential"]) == (TENANT_KIND, a.home, "pull")
    assert sorted(row["namespace"] for row in report["namespaces"]) == sorted(a.namespaces)
    everything = kubectl_regcred(cluster, "status", *settings)
    assert f"{TENANT_KIND} {a.home}/pull:" in everything.stdout

    # Widening the spec to every namespace still plans nothing outside the tenant.
    manifest = a.credential_body("pull", pull_spec("robot-pw", namespaces=["*"], secretName="wider"))
    plan = kubectl_regcred(cluster, "plan", "-f", "-", "-o", "json", *settings, stdin=json.dumps(manifest))
    (preview,) = json.loads(plan.stdout)
    planned = {row["namespace"] for row in preview["namespaces"] if row["outcome"] == "Synced"}
    assert planned == set(a.namespaces) and b.home not in {row["namespace"] for row in preview["namespaces"]}


def test_a_stopped_operator_watches_no_tenant_namespace_any_more(tenants, running_operator, wait_for):
    # The watch of a tenant's Secrets starts with its first credential, not with the
    # operator: stopping must end it too, or it outlives the operator's client.
    a, _ = tenants
    a.create_secret("robot-pw", "tenant-a-password")
    a.create_credential("pull", pull_spec("robot-pw"))
    caches = running_operator.controller.caches
    wait_for(lambda: caches.tenant_source_informers, what="the watch of A's Secrets")
    watches = [*caches.informers, *caches.tenant_source_informers]
    running_operator.stop()
    try:
        wait_for(lambda: not any(watch.alive() for watch in watches), what="every watch to end")
    finally:
        running_operator.start()  # the tenants' cleanup needs it
