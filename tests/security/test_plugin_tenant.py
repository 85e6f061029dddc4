"""`kubectl regcred status|plan` run by a tenant with namespace-scoped rights only.

The tenant is what docs/security.md and deploy/base/tenant-roles.yaml make of one: `edit`
in its own namespaces (which aggregates TenantRegistryCredentials) and nothing
cluster-wide, not even listing namespaces. It runs the installed `kubectl-regcred` with a
kubeconfig of its own (a token), as a user would. It must get an answer about its own
credential, and nothing of another tenant's namespaces, credentials or Secrets.

The operator runs in-process with --tenant-label on a control plane of this module's own.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from e2e.conftest import CRDS, Kubectl, OperatorHandle, poll, token_kubeconfig
from e2e.objects import SERVER, has_default_sa
from e2e.tenancy import TENANT_LABEL
from regcred.config import OperatorConfig
from regcred.models import API_GROUP, API_VERSION, TENANT_KIND, TENANT_PLURAL
from security.conftest import install_crds, own_control_plane
from testcluster import Cluster

pytestmark = pytest.mark.e2e

TENANT_ROLES = CRDS.parent / "deploy" / "base" / "tenant-roles.yaml"
PLUGIN = Path(sys.executable).parent / "kubectl-regcred"
CREDENTIAL = "pull"


cluster = own_control_plane("these tests run their own operator, which must be the only one: they need a local control plane")


@pytest.fixture(scope="module")
def operator(cluster: Cluster, kubectl: Kubectl) -> Iterator[OperatorHandle]:
    install_crds(kubectl)
    kubectl("apply", "--server-side", "-f", str(TENANT_ROLES))
    namespace = f"regcred-sec-{uuid.uuid4().hex[:6]}"
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    config = OperatorConfig(
        operator_namespace=namespace, tenant_label=TENANT_LABEL, resync_seconds=4.0, status_debounce_seconds=0.2
    )
    handle = OperatorHandle(config, cluster.kubeconfig)
    handle.start()
    yield handle
    handle.stop()


@dataclass(frozen=True)
class Tenant:
    label: str
    namespaces: list[str]

    @property
    def home(self) -> str:
        return self.namespaces[0]


def make_tenant(cluster: Cluster, count: int) -> Tenant:
    """Namespaces as the platform makes them (with the tenant label), and a credential in the first."""
    label = f"t{uuid.uuid4().hex[:6]}"
    namespaces = [f"{label}-{i}" for i in range(count)]
    for name in namespaces:
        cluster.core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={TENANT_LABEL: label}))
        )
        poll(lambda name=name: has_default_sa(cluster, name), what=f"the default ServiceAccount in {name}")
    tenant = Tenant(label, namespaces)
    cluster.core.create_namespaced_secret(tenant.home, client.V1Secret(
        metadata=client.V1ObjectMeta(name="robot-pw"),
        data={"password": base64.b64encode(f"pw-{label}".encode()).decode()},
    ))
    cluster.custom.create_namespaced_custom_object(API_GROUP, API_VERSION, tenant.home, TENANT_PLURAL, {
        "apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": TENANT_KIND,
        "metadata": {"name": CREDENTIAL, "namespace": tenant.home},
        "spec": {"registries": [{"server": SERVER, "username": label, "passwordSecretRef": {"name": "robot-pw"}}]},
    })
    return tenant


def grant_edit(cluster: Cluster, namespace: str, subject: client.RbacV1Subject) -> None:
    cluster.rbac.create_namespaced_role_binding(namespace, client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name=f"tenant-edit-{uuid.uuid4().hex[:6]}"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="edit"),
        subjects=[subject],
    ))


@dataclass(frozen=True)
class World:
    a: Tenant
    b: Tenant
    kubeconfig: Path  # tenant A's own: a token with `edit` in A's namespaces and nothing else
    user: str  # tenant A as a User, for --as
    group: str  # a group with the same rights, for --as-group
    lister: str  # a user with edit in A's home only, who may list namespaces
    operator_namespace: str


@pytest.fixture(scope="module")
def world(cluster: Cluster, operator: OperatorHandle, tmp_path_factory) -> World:
    a, b = make_tenant(cluster, 2), make_tenant(cluster, 1)
    # Tenant A's identity: a ServiceAccount of a namespace of the platform's, bound to `edit`
    # in A's namespaces only.
    identities = f"identities-{uuid.uuid4().hex[:6]}"
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=identities)))
    cluster.core.create_namespaced_service_account(
        identities, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="tenant-a"))
    )
    user = f"tenant-{a.label}"
    for namespace in a.namespaces:
        grant_edit(cluster, namespace, client.RbacV1Subject(kind="ServiceAccount", name="tenant-a", namespace=identities))
        grant_edit(cluster, namespace, client.RbacV1Subject(kind="User", name=user, api_group="rbac.authorization.k8s.io"))
        grant_edit(cluster, namespace, client.RbacV1Subject(kind="Group", name=f"group-{a.label}",
                                                            api_group="rbac.authorization.k8s.io"))
    # A tenant whose platform also lets it list namespaces (as Capsule's proxy or a portal
    # may), with edit in A's home only.
    lister = f"lister-{a.label}"
    cluster.rbac.create_cluster_role(client.V1ClusterRole(
        metadata=client.V1ObjectMeta(name=lister),
        rules=[client.V1PolicyRule(api_groups=[""], resources=["namespaces"], verbs=["list"])],
    ))
    cluster.rbac.create_cluster_role_binding(client.V1ClusterRoleBinding(
        metadata=client.V1ObjectMeta(name=lister),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=lister),
        subjects=[client.RbacV1Subject(kind="User", name=lister, api_group="rbac.authorization.k8s.io")],
    ))
    grant_edit(cluster, a.home, client.RbacV1Subject(kind="User", name=lister, api_group="rbac.authorization.k8s.io"))
    token = cluster.core.create_namespaced_service_account_token("tenant-a", identities, client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
    )).status.token
    kubeconfig = token_kubeconfig(cluster.kubeconfig, token, tmp_path_factory.mktemp("tenant-a") / "kubeconfig")

    def synced(tenant: Tenant, expected: str) -> bool:
        body = cluster.custom.get_namespaced_custom_object(API_GROUP, API_VERSION, tenant.home, TENANT_PLURAL, CREDENTIAL)
        return (body.get("status") or {}).get("synced") == expected

    poll(lambda: synced(a, "2/2"), timeout=60, what="A's credential in both of A's namespaces")
    poll(lambda: synced(b, "1/1"), timeout=60, what="B's credential in B's namespace")
    # RBAC reaches the authorizer through a watch: wait until A's token may read its namespace.
    poll(lambda: regcred(kubeconfig, "status", "-n", a.home).returncode == 0
         and regcred(cluster.kubeconfig, "status", "-n", a.home, "--as", user).returncode == 0
         and regcred(cluster.kubeconfig, "status", "-n", a.home, "--as", lister).returncode == 0,
         what="A's edit rights to take effect")
    return World(a, b, kubeconfig, user, f"group-{a.label}", lister, operator.config.operator_namespace)


def regcred(kubeconfig: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """The installed `kubectl-regcred`, as kubectl runs it, with this kubeconfig."""
    return subprocess.run(
        [str(PLUGIN), *args, "--kubeconfig", str(kubeconfig)],
        input=stdin, capture_output=True, text=True, timeout=120, check=False,
    )


def settings(world: World) -> tuple[str, ...]:
    """The operator's settings, as the tenant gives them (the platform documents them)."""
    return ("--tenant-label", TENANT_LABEL, "--operator-namespace", world.operator_namespace)


def assert_nothing_of(tenant: Tenant, result: subprocess.CompletedProcess) -> None:
    for namespace in tenant.namespaces:
        assert namespace not in result.stdout + result.stderr
    assert tenant.label not in result.stdout + result.stderr


def test_a_tenant_with_edit_rights_gets_the_status_of_its_credential(world: World):
    a, b = world.a, world.b
    result = regcred(world.kubeconfig, "status", CREDENTIAL, "-n", a.home, "-o", "json", *settings(world),
                     "--tenant-namespace", a.namespaces[1])

    assert result.returncode == 0, result.stderr
    (report,) = json.loads(result.stdout)
    assert (report["kind"], report["namespace"], report["credential"]) == (TENANT_KIND, a.home, CREDENTIAL)
    assert report["sourceProblems"] == []
    rows = {row["namespace"]: row for row in report["namespaces"]}
    assert set(rows) == set(a.namespaces)
    assert all(row["replica"] == "current" and row["serviceAccounts"] == "patched" for row in rows.values())
    assert report["synced"] == "2/2" and report["notShown"] == []
    assert_nothing_of(b, result)
    assert f"pw-{a.label}" not in result.stdout + result.stderr

    # Without naming its other namespace (it may not list namespaces): its home, and the
    # operator's count that says there is more.
    table = regcred(world.kubeconfig, "status", CREDENTIAL, "-n", a.home, *settings(world))
    assert table.returncode == 0, table.stderr
    assert a.home in table.stdout and a.namespaces[1] not in table.stdout
    assert "synced (as the operator counts): 2/2" in table.stdout
    assert_nothing_of(b, table)


def test_a_tenant_verifies_its_credential_from_its_own_secret(world: World):
    """verify reads the tenant's source Secret in its own namespace; the login fails (no such
    registry here) but the check runs: exit code 1, not a refusal."""
    result = regcred(world.kubeconfig, "verify", CREDENTIAL, "-n", world.a.home, "-o", "json", *settings(world))
    assert result.returncode == 1, result.stderr
    (check,) = json.loads(result.stdout)
    assert check["server"] == SERVER
    assert f"pw-{world.a.label}" not in result.stdout + result.stderr
    assert_nothing_of(world.b, result)


def test_a_tenant_that_may_list_namespaces_finds_its_tenants_by_the_label(world: World, cluster: Cluster):
    """With --tenant-label: the namespaces carrying its home's value, each read if it may, else named."""
    a, b = world.a, world.b
    result = regcred(cluster.kubeconfig, "status", CREDENTIAL, "-n", a.home, "-o", "json", *settings(world),
                     "--as", world.lister)
    assert result.returncode == 0, result.stderr
    (report,) = json.loads(result.stdout)
    assert [row["namespace"] for row in report["namespaces"]] == [a.home]
    assert report["notShown"] == [a.namespaces[1]]  # its tenant's, but it has no edit there
    assert_nothing_of(b, result)


def test_a_tenant_lists_the_credentials_of_its_namespace_only(world: World):
    listed = regcred(world.kubeconfig, "status", "-n", world.a.home, "-o", "json", *settings(world))
    assert listed.returncode == 0, listed.stderr
    assert [(r["namespace"], r["credential"]) for r in json.loads(listed.stdout)] == [(world.a.home, CREDENTIAL)]
    assert_nothing_of(world.b, listed)

    everything = regcred(world.kubeconfig, "status", *settings(world))
    assert everything.returncode == 2
    assert "-n NAMESPACE" in everything.stderr and "Traceback" not in everything.stderr


def test_a_tenant_plans_a_widened_credential_within_its_own_namespaces(world: World):
    a, b = world.a, world.b
    manifest = {
        "apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": TENANT_KIND,
        "metadata": {"name": CREDENTIAL, "namespace": a.home},
        "spec": {"registries": [{"server": SERVER, "username": "robot", "passwordSecretRef": {"name": "robot-pw"}}],
                 "namespaces": ["*"], "secretName": "wider"},
    }
    result = regcred(world.kubeconfig, "plan", "-f", "-", "-o", "json", *settings(world),
                     "--tenant-namespace", a.namespaces[1], stdin=json.dumps(manifest))

    assert result.returncode == 1, result.stderr  # 1: changes
    (preview,) = json.loads(result.stdout)
    outcomes = {row["namespace"]: (row["replica"], row["outcome"]) for row in preview["namespaces"]}
    # The new name in both of A's namespaces, the old one's copies going.
    assert set(outcomes) == set(a.namespaces)
    assert all(outcome == "Synced" for _, outcome in outcomes.values())
    assert preview["readNamespaces"] == sorted(a.namespaces) and preview["notShown"] == []
    assert_nothing_of(b, result)


def test_naming_another_tenants_namespace_reads_nothing_of_it(world: World):
    a, b = world.a, world.b
    result = regcred(world.kubeconfig, "status", CREDENTIAL, "-n", a.home, "-o", "json", *settings(world),
                     "--tenant-namespace", b.home)

    assert result.returncode == 0, result.stderr
    (report,) = json.loads(result.stdout)
    assert [row["namespace"] for row in report["namespaces"]] == [a.home]
    assert report["notShown"] == [b.home]
    assert f"{TENANT_LABEL}: {b.label}" not in result.stdout and "tenantregistrycredentials in " + b.home not in result.stderr

    stolen = regcred(world.kubeconfig, "status", CREDENTIAL, "-n", b.home, *settings(world))
    assert stolen.returncode == 2 and "forbidden" in stolen.stderr.lower()
    assert f"pw-{b.label}" not in stolen.stdout + stolen.stderr


def test_a_kubeconfig_user_that_impersonates_the_tenant_reads_as_the_tenant(
    world: World, cluster: Cluster, tmp_path: Path
):
    """kubectl acts as a kubeconfig user's `as`; so must the plugin, not as the identity behind it."""
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    context = next(c["context"] for c in admin["contexts"] if c["name"] == admin["current-context"])
    for user in admin["users"]:
        if user["name"] == context["user"]:
            user["user"]["as"] = world.user
    kubeconfig = tmp_path / "as-tenant"
    kubeconfig.write_text(yaml.safe_dump(admin))

    everything = regcred(kubeconfig, "status", "-o", "json", *settings(world))
    assert everything.returncode == 2 and "forbidden" in everything.stderr.lower()
    assert_nothing_of(world.b, everything)
    own = regcred(kubeconfig, "status", CREDENTIAL, "-n", world.a.home, "-o", "json", *settings(world))
    assert own.returncode == 0, own.stderr
    (report,) = json.loads(own.stdout)
    assert [row["namespace"] for row in report["namespaces"]] == [world.a.home]
    assert_nothing_of(world.b, own)


def test_the_plugin_acts_as_the_user_that_as_names(world: World, cluster: Cluster):
    """kubectl's --as: a cluster admin sees what the tenant sees, and no more."""
    a, b = world.a, world.b
    as_tenant = regcred(cluster.kubeconfig, "status", CREDENTIAL, "-n", a.home, "-o", "json", *settings(world),
                        "--as", world.user)
    assert as_tenant.returncode == 0, as_tenant.stderr
    (report,) = json.loads(as_tenant.stdout)
    assert [row["namespace"] for row in report["namespaces"]] == [a.home]  # A may not list namespaces
    assert "cannot read the cluster as the operator does" in as_tenant.stderr
    assert_nothing_of(b, as_tenant)

    # Each --as-group is a group of its own: the rights come from the second alone.
    as_member = regcred(cluster.kubeconfig, "status", CREDENTIAL, "-n", a.home, *settings(world),
                        "--as", "someone-else", "--as-group", "unrelated", "--as-group", world.group)
    assert as_member.returncode == 0, as_member.stderr

    as_nobody = regcred(cluster.kubeconfig, "status", CREDENTIAL, "-n", a.home, "--as", "nobody-at-all")
    assert as_nobody.returncode == 2 and "forbidden" in as_nobody.stderr.lower()
    as_admin = regcred(cluster.kubeconfig, "status", CREDENTIAL, "-n", a.home, "-o", "json", *settings(world))
    (full,) = json.loads(as_admin.stdout)
    assert {row["namespace"] for row in full["namespaces"]} == set(a.namespaces) and "notShown" not in full
