"""The tenant boundary as the chart configures it for Capsule and a GitOps controller.

Capsule sets its tenant label itself, as the tenant owner who creates a namespace, and
guards it; a boundary that also guarded it refused every namespace a tenant owner made.
With `tenantBoundary.guardTenantLabel=false` the policy leaves Capsule's label alone and
still refuses the labels that steer a credential's selection (regcred.dev/). Argo CD's
application controller applies labelled namespaces from Git: named in
`tenantBoundary.adminUsers`, it is not refused. Tried on a real API server as
impersonated users holding the rights to create and label namespaces.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from e2e.conftest import Kubectl, poll
from e2e.tenancy import TENANT_LABEL, TenantWorld, apply_objects, delete_objects, impersonating, refused

pytestmark = pytest.mark.e2e

CHART = Path(__file__).resolve().parents[2] / "deploy" / "chart"
BOUNDARY = "regcred-tenant-boundary"
SELECTION_LABEL = "regcred.dev/pull-from"
ARGOCD_USER = "system:serviceaccount:argocd:argocd-application-controller"
RBAC_API = "rbac.authorization.k8s.io"


def capsule_boundary_objects(helm_bin: Path) -> list[dict[str, Any]]:
    """The boundary policy and binding as the chart renders them with the values docs/security.md gives Capsule users."""
    rendered = subprocess.run(
        [
            str(helm_bin), "template", "regcred-operator", str(CHART), "--namespace", "regcred-system",
            "--set", f"tenantLabel={TENANT_LABEL}",
            "--set", "tenantBoundary.enabled=true",
            "--set", "tenantBoundary.guardTenantLabel=false",
            "--set", f"tenantBoundary.adminUsers={{{ARGOCD_USER}}}",
        ],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc and doc["metadata"]["name"] == BOUNDARY]


@dataclass
class CapsuleBoundary:
    world: TenantWorld
    gitops: client.CoreV1Api


@pytest.fixture(scope="module")
def boundary(cluster, kubectl: Kubectl, helm_bin: Path) -> Iterator[CapsuleBoundary]:
    objects = capsule_boundary_objects(helm_bin)
    assert {doc["kind"] for doc in objects} == {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    apply_objects(kubectl, objects)
    world = TenantWorld(cluster)
    # Argo CD's controller holds the same namespace rights as the tenant, and no admin group.
    binding = f"{world.role}-gitops"
    cluster.rbac.create_cluster_role_binding(client.V1ClusterRoleBinding(
        metadata=client.V1ObjectMeta(name=binding),
        role_ref=client.V1RoleRef(api_group=RBAC_API, kind="ClusterRole", name=world.role),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name="argocd-application-controller", namespace="argocd")],
    ))
    gitops = client.CoreV1Api(impersonating(cluster, ARGOCD_USER))
    try:
        # Policies load a moment after they are written; this one is in force once the
        # controller may set a regcred.dev/ label that a tenant may not.
        poll(lambda: world.create_namespace(gitops, {SELECTION_LABEL: "probe"}) is not None
             and world.create_namespace(world.tenant, {SELECTION_LABEL: "probe"}) is None,
             interval=0.5, what="the Capsule boundary policy to take effect")
        yield CapsuleBoundary(world, gitops)
    finally:
        gitops.api_client.close()
        world.close()
        cluster.rbac.delete_cluster_role_binding(binding)
        delete_objects(kubectl, objects)


def relabel(api: client.CoreV1Api, name: str, labels: dict[str, str | None]) -> str | None:
    """Merge-patch a namespace's labels as `api`'s user; the refusal message, or None."""
    return refused(lambda: api.patch_namespace(name, {"metadata": {"labels": labels}}))


def test_a_tenant_owner_sets_the_capsule_label_as_capsule_does(boundary: CapsuleBoundary) -> None:
    world = boundary.world
    created = world.create_namespace(world.tenant, {TENANT_LABEL: "acme"}, prefix="capsule")
    assert created, "Capsule's label on a namespace its tenant owner creates is Capsule's to guard"
    assert relabel(world.tenant, created, {TENANT_LABEL: "other"}) is None
    assert relabel(world.tenant, created, {TENANT_LABEL: None}) is None


def test_regcred_labels_stay_the_platforms_with_the_capsule_setting(boundary: CapsuleBoundary) -> None:
    world = boundary.world
    assert world.create_namespace(world.tenant, {TENANT_LABEL: "acme", SELECTION_LABEL: "yes"}) is None
    plain = world.create_namespace(world.tenant, {TENANT_LABEL: "acme"}, prefix="capsule")
    assert plain
    message = relabel(world.tenant, plain, {SELECTION_LABEL: "yes"})
    assert message and SELECTION_LABEL in message and "platform admins" in message
    labelled = world.create_namespace(world.admin, {TENANT_LABEL: "acme", SELECTION_LABEL: "yes"})
    assert labelled
    assert relabel(world.tenant, labelled, {SELECTION_LABEL: "no"})
    assert relabel(world.tenant, labelled, {SELECTION_LABEL: None})


def test_the_gitops_controller_named_in_admin_users_applies_labelled_namespaces(boundary: CapsuleBoundary) -> None:
    world = boundary.world
    synced = world.create_namespace(boundary.gitops, {TENANT_LABEL: "acme", SELECTION_LABEL: "yes"}, prefix="gitops")
    assert synced, "a namespace from Git with regcred.dev/ labels is not refused to Argo CD's controller"
    assert relabel(boundary.gitops, synced, {SELECTION_LABEL: "no"}) is None
    assert relabel(world.tenant, synced, {SELECTION_LABEL: "yes"}), "the tenant is still refused"
