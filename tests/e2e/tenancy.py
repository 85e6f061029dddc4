"""Tenants and platform admins as the API server sees them: impersonated users with RBAC.

`TenantWorld` gives a tenant user the right to create and update namespaces (as a
namespace-provisioning portal or Capsule would) and `edit` in its own namespaces (which
aggregates TenantRegistryCredentials); the admin user is in the `platform-admins` group.
Requests go through a real API server as those users.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

REPO = Path(__file__).resolve().parents[2]
BOUNDARY_COMPONENT = REPO / "deploy" / "components" / "tenant-boundary"
TENANT_LABEL = "capsule.clastix.io/tenant"
ADMIN_GROUP = "platform-admins"


def boundary_objects(kubectl: Any, workdir: Path) -> list[dict[str, Any]]:
    """The ValidatingAdmissionPolicy and binding, as an overlay with the component builds them."""
    overlay = workdir / "overlay"
    overlay.mkdir(exist_ok=True)
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        # kustomize takes relative paths only.
        "resources": [os.path.relpath(REPO / "deploy" / "base", overlay)],
        "components": [os.path.relpath(BOUNDARY_COMPONENT, overlay)],
    }))
    built = kubectl("kustomize", "--load-restrictor", "LoadRestrictionsNone", str(overlay)).stdout
    kinds = {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    return [doc for doc in yaml.safe_load_all(built) if doc and doc["kind"] in kinds]


def impersonating(cluster: Any, user: str, groups: tuple[str, ...] = ()) -> client.ApiClient:
    api_client = cluster.new_api_client()
    api_client.set_default_header("Impersonate-User", user)
    if groups:
        # The generated client keeps one value per header: one group is all these tests need.
        (group,) = groups
        api_client.set_default_header("Impersonate-Group", group)
    return api_client


class TenantWorld:
    """Users `tenant-<id>` and `admin-<id>` and the cluster roles that make them what they are."""

    def __init__(self, cluster: Any) -> None:
        suffix = uuid.uuid4().hex[:6]
        self.cluster = cluster
        self.role = f"regcred-e2e-namespace-provisioner-{suffix}"
        self.tenant_user = f"tenant-{suffix}"
        self.admin_user = f"admin-{suffix}"
        cluster.rbac.create_cluster_role(client.V1ClusterRole(
            metadata=client.V1ObjectMeta(name=self.role),
            rules=[client.V1PolicyRule(
                api_groups=[""], resources=["namespaces"], verbs=["get", "list", "create", "update", "patch"]
            )],
        ))
        subjects = [
            client.RbacV1Subject(kind="User", name=self.tenant_user, api_group="rbac.authorization.k8s.io"),
            client.RbacV1Subject(kind="Group", name=ADMIN_GROUP, api_group="rbac.authorization.k8s.io"),
        ]
        cluster.rbac.create_cluster_role_binding(client.V1ClusterRoleBinding(
            metadata=client.V1ObjectMeta(name=self.role),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=self.role),
            subjects=subjects,
        ))
        self.tenant = client.CoreV1Api(impersonating(cluster, self.tenant_user))
        self.admin = client.CoreV1Api(impersonating(cluster, self.admin_user, (ADMIN_GROUP,)))
        self.tenant_custom = client.CustomObjectsApi(self.tenant.api_client)
        self.namespaces: list[str] = []

    def create_namespace(self, api: client.CoreV1Api, labels: dict[str, str], prefix: str = "tn") -> str | None:
        """Create a namespace as `api`'s user: its name, or None when refused."""
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        body = client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
        if refused(lambda: api.create_namespace(body)):
            return None
        self.namespaces.append(name)
        return name

    def grant_edit(self, namespace: str) -> None:
        """The tenant user may `edit` in this namespace (TenantRegistryCredentials, Secrets, ...)."""
        self.cluster.rbac.create_namespaced_role_binding(namespace, client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name=f"{self.tenant_user}-edit"),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="edit"),
            subjects=[client.RbacV1Subject(kind="User", name=self.tenant_user, api_group="rbac.authorization.k8s.io")],
        ))

    def close(self) -> None:
        for name in self.namespaces:
            self.cluster.core.delete_namespace(name)
        self.cluster.rbac.delete_cluster_role_binding(self.role)
        self.cluster.rbac.delete_cluster_role(self.role)
        for api in (self.tenant, self.admin):
            api.api_client.close()


@contextmanager
def bounded_world(cluster: Any, kubectl: Any, workdir: Path, poll: Any) -> Iterator[TenantWorld]:
    """A TenantWorld with the tenant-boundary policy in force (removed afterwards)."""
    objects = boundary_objects(kubectl, workdir)
    apply_objects(kubectl, objects)
    world = TenantWorld(cluster)
    try:
        # Policies are loaded by the API server a moment after they are written.
        poll(lambda: world.create_namespace(world.tenant, {TENANT_LABEL: "probe"}) is None,
             what="the policy to take effect")
        yield world
    finally:
        world.close()
        delete_objects(kubectl, objects)


def apply_objects(kubectl: Any, objects: list[dict[str, Any]]) -> None:
    kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(objects))


def delete_objects(kubectl: Any, objects: list[dict[str, Any]]) -> None:
    kubectl("delete", "--ignore-not-found", "-f", "-", stdin=yaml.safe_dump_all(objects))


def refused(call: Any) -> str | None:
    """The API server's message when `call()` is refused (403/422), None when it succeeds."""
    try:
        call()
    except client.ApiException as error:
        if error.status in (403, 422):
            return str(error.body)
        raise
    return None
