"""Side doors around the tenant boundary: every request that can change a namespace's labels.

The boundary policy (deploy/components/tenant-boundary) decides who may set the labels
that steer a credential's selection. A label is part of the Namespace object, and more
than one request writes that object: the main resource (create, update, merge, JSON and
strategic patch, server-side apply) and its subresources `status` and `finalize`, whose
strategies keep the new object's metadata. Each route is tried here with kubectl, as an
impersonated user holding only the rights that route needs (kubectl reads
`namespaces/status` before patching it), on a real API server.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from kubernetes import client

from e2e.conftest import Kubectl, poll
from e2e.tenancy import (
    ADMIN_GROUP,
    TENANT_LABEL,
    TenantWorld,
    apply_objects,
    boundary_objects,
    delete_objects,
)

pytestmark = pytest.mark.e2e

SELECTION_LABEL = "regcred.dev/pull-from"
REFUSAL = "only platform admins may set, change or remove the namespace label"
RBAC_API = "rbac.authorization.k8s.io"


@dataclass
class Boundary:
    """The policy in force, a tenant (namespaces create/update/patch), a user with only the
    `status` and `finalize` subresources, and a platform admin with all of it."""

    cluster: object
    kubectl: Kubectl
    world: TenantWorld
    subresource_user: str

    def as_user(self, user: str, *args: str, stdin: str | None = None) -> str | None:
        """Run kubectl as `user` (the admin with its group); the refusal's stderr, or None."""
        identity = ["--as", user]
        if user == self.world.admin_user:
            identity += ["--as-group", ADMIN_GROUP]
        result = self.kubectl(*identity, *args, stdin=stdin, check=False)
        return result.stderr if result.returncode else None

    def labels(self, namespace: str) -> dict[str, str]:
        return self.cluster.core.read_namespace(namespace).metadata.labels or {}

    def namespace(self, labels: dict[str, str]) -> str:
        """A namespace made by the admin (so it may carry guarded labels)."""
        name = self.world.create_namespace(self.world.admin, labels, prefix="door")
        assert name, "the admin may create namespaces with any label"
        return name

    def with_labels(self, namespace: str, labels: dict[str, str | None]) -> str:
        """The Namespace as read now, with `labels` merged in (None removes), as JSON."""
        body = self.cluster.api_client.sanitize_for_serialization(
            self.cluster.core.read_namespace(namespace)
        )
        merged = {**body["metadata"].get("labels", {}), **labels}
        body["metadata"]["labels"] = {key: value for key, value in merged.items() if value is not None}
        return json.dumps(body)


@pytest.fixture(scope="module")
def boundary(cluster, kubectl: Kubectl, tmp_path_factory) -> Iterator[Boundary]:
    objects = boundary_objects(kubectl, tmp_path_factory.mktemp("boundary"))
    apply_objects(kubectl, objects)
    world = TenantWorld(cluster)
    user = f"subresources-{uuid.uuid4().hex[:6]}"
    role = f"regcred-security-namespace-subresources-{uuid.uuid4().hex[:6]}"
    cluster.rbac.create_cluster_role(client.V1ClusterRole(
        metadata=client.V1ObjectMeta(name=role),
        rules=[
            # kubectl reads the subresource before it patches it.
            client.V1PolicyRule(api_groups=[""], resources=["namespaces/status"], verbs=["get", "patch", "update"]),
            client.V1PolicyRule(api_groups=[""], resources=["namespaces/finalize"], verbs=["update"]),
        ],
    ))
    cluster.rbac.create_cluster_role_binding(client.V1ClusterRoleBinding(
        metadata=client.V1ObjectMeta(name=role),
        role_ref=client.V1RoleRef(api_group=RBAC_API, kind="ClusterRole", name=role),
        subjects=[
            client.RbacV1Subject(kind="User", name=user, api_group=RBAC_API),
            client.RbacV1Subject(kind="Group", name=ADMIN_GROUP, api_group=RBAC_API),
        ],
    ))
    found = Boundary(cluster, kubectl, world, user)
    try:
        # Policies and bindings take effect a moment after they are written.
        poll(lambda: world.create_namespace(world.tenant, {TENANT_LABEL: "probe"}) is None,
             what="the policy to take effect")
        probe = found.namespace({})
        poll(lambda: found.as_user(user, "patch", "namespace", probe, "--subresource=status",
                                   "--type=merge", "-p", '{"status":{}}') is None,
             what="the subresource user's rights to take effect")
        yield found
    finally:
        world.close()
        cluster.rbac.delete_cluster_role_binding(role)
        cluster.rbac.delete_cluster_role(role)
        delete_objects(kubectl, objects)


def merge_patch(labels: dict[str, str | None]) -> str:
    return json.dumps({"metadata": {"labels": labels}})


def json_patch(labels: dict[str, str | None]) -> str:
    operations = []
    for key, value in labels.items():
        path = "/metadata/labels/" + key.replace("~", "~0").replace("/", "~1")
        operations.append({"op": "remove", "path": path} if value is None
                          else {"op": "add", "path": path, "value": value})
    return json.dumps(operations)


def apply_manifest(namespace: str, labels: dict[str, str]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Namespace",
                       "metadata": {"name": namespace, "labels": labels}})


# A route: (boundary, user, namespace, labels to set (None: remove)) -> refusal or None.
Route = Callable[[Boundary, str, str, dict[str, str | None]], str | None]


def status_merge_patch(b: Boundary, user: str, ns: str, labels: dict[str, str | None]) -> str | None:
    # The reproduction, verbatim.
    return b.as_user(user, "patch", "namespace", ns, "--subresource=status", "--type=merge",
                     "-p", merge_patch(labels))


def status_json_patch(b: Boundary, user: str, ns: str, labels: dict[str, str | None]) -> str | None:
    return b.as_user(user, "patch", "namespace", ns, "--subresource=status", "--type=json",
                     "-p", json_patch(labels))


def status_strategic_patch(b: Boundary, user: str, ns: str, labels: dict[str, str | None]) -> str | None:
    return b.as_user(user, "patch", "namespace", ns, "--subresource=status", "--type=strategic",
                     "-p", merge_patch(labels))


def status_server_side_apply(b: Boundary, user: str, ns: str, labels: dict[str, str | None]) -> str | None:
    # SSA of labels under a new field manager: removing is not expressible without owning them.
    wanted = {key: value for key, value in labels.items() if value is not None}
    return b.as_user(user, "apply", "--server-side", "--force-conflicts", "--subresource=status",
                     "--field-manager", "side-door", "-f", "-", stdin=apply_manifest(ns, wanted))


def status_put(b: Boundary, user: str, ns: str, labels: dict[str, str | None]) -> str | None:
    return b.as_user(user, "replace", "--raw", f"/api/v1/namespaces/{ns}/status", "-f", "-",
                     stdin=b.with_labels(ns, labels))


def finalize_put(b: Boundary, user: str, ns: str, labels: dict[str, str | None]) -> str | None:
    return b.as_user(user, "replace", "--raw", f"/api/v1/namespaces/{ns}/finalize", "-f", "-",
                     stdin=b.with_labels(ns, labels))


def main_merge_patch(b: Boundary, user: str, ns: str, labels: dict[str, str | None]) -> str | None:
    return b.as_user(user, "patch", "namespace", ns, "--type=merge", "-p", merge_patch(labels))


def main_json_patch(b: Boundary, user: str, ns: str, labels: dict[str, str | None]) -> str | None:
    return b.as_user(user, "patch", "namespace", ns, "--type=json", "-p", json_patch(labels))


def main_label(b: Boundary, user: str, ns: str, labels: dict[str, str | None]) -> str | None:
    # kubectl label: a strategic merge patch.
    changes = [f"{key}-" if value is None else f"{key}={value}" for key, value in labels.items()]
    return b.as_user(user, "label", "--overwrite", "namespace", ns, *changes)


def main_server_side_apply(b: Boundary, user: str, ns: str, labels: dict[str, str | None]) -> str | None:
    wanted = {key: value for key, value in labels.items() if value is not None}
    return b.as_user(user, "apply", "--server-side", "--force-conflicts", "--field-manager", "side-door",
                     "-f", "-", stdin=apply_manifest(ns, wanted))


def main_put(b: Boundary, user: str, ns: str, labels: dict[str, str | None]) -> str | None:
    return b.as_user(user, "replace", "-f", "-", stdin=b.with_labels(ns, labels))


SUBRESOURCE_ROUTES: list[Route] = [
    status_merge_patch, status_json_patch, status_strategic_patch, status_server_side_apply,
    status_put, finalize_put,
]
MAIN_ROUTES: list[Route] = [main_merge_patch, main_json_patch, main_label, main_server_side_apply, main_put]
# Server-side apply cannot remove a label another manager set, so it is tried for set and change.
REMOVING_ROUTES = [r for r in SUBRESOURCE_ROUTES + MAIN_ROUTES
                   if r not in (status_server_side_apply, main_server_side_apply)]


def user_for(b: Boundary, route: Route) -> str:
    """The user holding exactly the rights the route needs: the subresource user for
    `status` and `finalize`, the namespace-provisioning tenant for the main resource."""
    return b.subresource_user if route in SUBRESOURCE_ROUTES else b.world.tenant_user


def refused_by_the_policy(message: str | None) -> bool:
    return message is not None and REFUSAL in message


@pytest.mark.parametrize("route", SUBRESOURCE_ROUTES + MAIN_ROUTES, ids=lambda r: r.__name__)
def test_no_route_sets_a_guarded_label(boundary: Boundary, route: Route):
    for guarded in (TENANT_LABEL, SELECTION_LABEL):
        plain = boundary.namespace({})
        message = route(boundary, user_for(boundary, route), plain, {guarded: "acme"})
        assert refused_by_the_policy(message), f"{route.__name__} set {guarded}: {message}"
        assert guarded not in boundary.labels(plain)


@pytest.mark.parametrize("route", SUBRESOURCE_ROUTES + MAIN_ROUTES, ids=lambda r: r.__name__)
def test_no_route_moves_a_namespace_to_another_tenant(boundary: Boundary, route: Route):
    labelled = boundary.namespace({TENANT_LABEL: "acme"})
    message = route(boundary, user_for(boundary, route), labelled, {TENANT_LABEL: "other"})
    assert refused_by_the_policy(message), f"{route.__name__} changed the tenant: {message}"
    assert boundary.labels(labelled)[TENANT_LABEL] == "acme"


@pytest.mark.parametrize("route", REMOVING_ROUTES, ids=lambda r: r.__name__)
def test_no_route_removes_a_guarded_label(boundary: Boundary, route: Route):
    labelled = boundary.namespace({TENANT_LABEL: "acme", SELECTION_LABEL: "yes"})
    message = route(boundary, user_for(boundary, route), labelled, {SELECTION_LABEL: None})
    assert refused_by_the_policy(message), f"{route.__name__} removed {SELECTION_LABEL}: {message}"
    assert boundary.labels(labelled)[SELECTION_LABEL] == "yes"


@pytest.mark.parametrize("route", SUBRESOURCE_ROUTES + MAIN_ROUTES, ids=lambda r: r.__name__)
def test_each_route_still_writes_free_labels_and_admins_guarded_ones(boundary: Boundary, route: Route):
    """The routes are real (a free label passes them), and guarding them locks out no one
    who may set the label: the same request by a platform admin passes."""
    labelled = boundary.namespace({TENANT_LABEL: "acme"})
    assert route(boundary, user_for(boundary, route), labelled, {"team": "web"}) is None
    assert boundary.labels(labelled)["team"] == "web"
    assert route(boundary, boundary.world.admin_user, labelled, {TENANT_LABEL: "other"}) is None
    assert boundary.labels(labelled)[TENANT_LABEL] == "other"


def test_creating_a_namespace_with_a_guarded_label_is_refused_by_every_route(boundary: Boundary):
    tenant = boundary.world.tenant_user
    for create in (["create", "-f", "-"], ["apply", "--server-side", "-f", "-"]):
        name = f"door-{uuid.uuid4().hex[:8]}"
        message = boundary.as_user(tenant, *create, stdin=apply_manifest(name, {TENANT_LABEL: "acme"}))
        assert refused_by_the_policy(message), f"kubectl {create[0]} created {name}: {message}"
        assert not boundary.cluster.core.list_namespace(field_selector=f"metadata.name={name}").items
