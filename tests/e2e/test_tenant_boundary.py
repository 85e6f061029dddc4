"""The tenant boundary policy on the real API server, tried as impersonated users.

A tenant allowed to create and update namespaces cannot set, change or remove the
tenant label or labels under regcred.dev/; a platform admin can; other labels stay free,
and namespaces that carry guarded labels are not locked out of unrelated updates.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client
from tenancy import TENANT_LABEL, TenantWorld, bounded_world, refused

from e2e.conftest import poll

SELECTION_LABEL = "regcred.dev/pull-from"


@pytest.fixture
def world(cluster, kubectl, tmp_path) -> Iterator[TenantWorld]:
    with bounded_world(cluster, kubectl, tmp_path, poll) as world:
        yield world


def create(world: TenantWorld, api: client.CoreV1Api, labels: dict[str, str]) -> str | None:
    return world.create_namespace(api, labels, prefix="tb")


def relabel(api: client.CoreV1Api, name: str, labels: dict[str, str | None]) -> str | None:
    """Merge-patch a namespace's labels as `api`'s user; the refusal message, or None."""
    return refused(lambda: api.patch_namespace(name, {"metadata": {"labels": labels}}))


def test_a_tenant_cannot_create_a_namespace_with_a_guarded_label_an_admin_can(world):
    assert create(world, world.tenant, {TENANT_LABEL: "acme"}) is None
    assert create(world, world.tenant, {SELECTION_LABEL: "acme"}) is None
    assert create(world, world.tenant, {"team": "web"}) is not None, "other labels stay free"
    assert create(world, world.admin, {TENANT_LABEL: "acme", SELECTION_LABEL: "acme"}) is not None


def test_a_tenant_cannot_add_change_or_remove_a_guarded_label(world):
    labelled = create(world, world.admin, {TENANT_LABEL: "acme", SELECTION_LABEL: "yes"})
    plain = create(world, world.tenant, {})
    assert labelled and plain
    message = relabel(world.tenant, plain, {TENANT_LABEL: "acme"})
    assert message and TENANT_LABEL in message and "platform admins" in message
    assert relabel(world.tenant, plain, {SELECTION_LABEL: "yes"})
    assert relabel(world.tenant, labelled, {TENANT_LABEL: "other"}), "moving to another tenant"
    assert relabel(world.tenant, labelled, {TENANT_LABEL: None}), "removing the tenant label"
    assert relabel(world.tenant, labelled, {SELECTION_LABEL: None})
    assert relabel(world.admin, labelled, {TENANT_LABEL: "other", SELECTION_LABEL: None}) is None


def test_namespaces_with_guarded_labels_still_take_unrelated_updates(world):
    labelled = create(world, world.admin, {TENANT_LABEL: "acme", SELECTION_LABEL: "yes"})
    assert labelled
    assert relabel(world.tenant, labelled, {"team": "web"}) is None
    assert relabel(world.tenant, labelled, {"team": None}) is None
    annotated = world.tenant.patch_namespace(labelled, {"metadata": {"annotations": {"owner": "web"}}})
    assert annotated.metadata.labels[TENANT_LABEL] == "acme"
