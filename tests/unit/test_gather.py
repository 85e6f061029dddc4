"""Which credentials an event concerns, and which namespaces a credential touches (pure, on a snapshot)."""

from __future__ import annotations

from typing import Any

import pytest

from regcred.controller.gather import (
    Scope,
    credentials_for_namespace,
    credentials_for_replica,
    credentials_for_service_account,
    namespace_view,
    namespaces_touched,
    resolve,
    targets,
)
from regcred.config import OperatorConfig
from regcred.controller.state import ClusterSnapshot
from regcred.kube.resources import CredentialRecord, credential_record
from regcred.planning.plan import SecretState, ServiceAccountState
from regcred.planning.selection import NamespaceInfo

SCOPE = Scope(frozenset({"kube-system"}), tenant_label="tenant")


def credential(
    name: str, team: str, secret_name: str | None = None, namespace: str | None = None, **spec: Any
) -> CredentialRecord:
    body = {
        "metadata": {
            "name": name, "uid": f"uid-{name}", "creationTimestamp": "2026-01-01T00:00:00Z", "namespace": namespace
        },
        "spec": {
            "registries": [{"server": "r.example", "username": "u", "passwordSecretRef": {"name": f"{name}-pw"}}],
            "namespaceSelector": {"matchLabels": {"team": team}},
            **({"secretName": secret_name} if secret_name else {}),
            **spec,
        },
    }
    return credential_record(body)


def replica(namespace: str, name: str, owner: str | None) -> SecretState:
    return SecretState(namespace, name, "1", "kubernetes.io/dockerconfigjson", owner is not None, owner, "h", "d",
                       frozenset())


def account(namespace: str, name: str, added: tuple[str, ...] = ()) -> ServiceAccountState:
    return ServiceAccountState(namespace, name, "1", added, added)


# Three credentials: red serves team=red, blue serves team=blue; green wants the
# same secret name as red ("shared") for team=green.
RED = credential("red", "red", secret_name="shared")
BLUE = credential("blue", "blue")
GREEN = credential("green", "green", secret_name="shared")
SNAPSHOT = ClusterSnapshot(
    credentials_by_key={record.name: record for record in (RED, BLUE, GREEN)},
    namespaces_by_name={
        "red-1": NamespaceInfo("red-1", {"team": "red"}),
        "blue-1": NamespaceInfo("blue-1", {"team": "blue"}),
        # Relabelled from red to blue: red's replica and entry are still there.
        "moved": NamespaceInfo("moved", {"team": "blue"}),
        "plain": NamespaceInfo("plain", {}),
    },
    replicas=(replica("red-1", "shared", "red"), replica("moved", "shared", "red"), replica("blue-1", "blue", "blue")),
    service_accounts=(
        account("red-1", "default", ("shared",)),
        account("moved", "default", ("shared",)),
        account("plain", "default"),
    ),
    source_secrets={},
)


@pytest.mark.parametrize(
    ("namespace", "infos", "expected"),
    [
        ("red-1", [SNAPSHOT.namespace("red-1")], {"red", "green"}),  # served by red; green shares its name
        ("blue-1", [SNAPSHOT.namespace("blue-1")], {"blue"}),
        ("moved", [SNAPSHOT.namespace("moved")], {"red", "blue", "green"}),
        ("plain", [SNAPSHOT.namespace("plain")], set()),  # an unrelated namespace concerns nobody
        ("plain", [NamespaceInfo("plain", {}), NamespaceInfo("plain", {"team": "blue"})], {"blue"}),
        ("new", [None, NamespaceInfo("new", {"team": "red"})], {"red"}),
        ("kube-system", [NamespaceInfo("kube-system", {"team": "red"})], set()),  # excluded
    ],
)
def test_a_namespace_event_concerns_only_the_credentials_that_select_or_serve_it(namespace, infos, expected):
    assert credentials_for_namespace(SNAPSHOT, namespace, infos, SCOPE) == expected


@pytest.mark.parametrize(
    ("replicas", "expected"),
    [
        ([replica("blue-1", "blue", "blue")], {"blue"}),
        ([None, replica("red-1", "shared", "red")], {"red", "green"}),
        ([replica("plain", "someone-elses", None)], set()),
    ],
)
def test_a_replica_event_concerns_its_owner_and_the_credentials_wanting_its_name(replicas, expected):
    assert credentials_for_replica(SNAPSHOT, replicas) == expected


@pytest.mark.parametrize(
    ("namespace", "accounts", "expected"),
    [
        ("blue-1", [None, account("blue-1", "builder")], {"blue"}),
        ("plain", [account("plain", "builder")], set()),
        ("plain", [account("plain", "builder", ("shared",)), None], {"red", "green"}),
    ],
)
def test_a_service_account_event_concerns_the_targeting_credentials_and_its_entries(namespace, accounts, expected):
    assert credentials_for_service_account(SNAPSHOT, namespace, accounts, SCOPE) == expected


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (RED, {"red-1", "moved"}),  # targets red-1; left a replica and an entry in moved
        (BLUE, {"blue-1", "moved"}),
        # Green shares red's secret name. Entries record names, not credentials, so red's
        # namespaces are visited too (and left alone: red holds the name there).
        (GREEN, {"red-1", "moved"}),
    ],
)
def test_a_credential_touches_what_it_targets_and_where_its_name_was_added(record, expected):
    assert namespaces_touched(SNAPSHOT, record, SCOPE) == expected


# Tenants: a-1 and a-2 belong to tenant a, b-1 to tenant b; "free" to nobody.
TENANT_NAMESPACES = {
    name: NamespaceInfo(name, labels)
    for name, labels in {
        "a-1": {"tenant": "a", "team": "red"},
        "a-2": {"tenant": "a", "team": "red"},
        "b-1": {"tenant": "b", "team": "red"},
        "free": {"team": "red"},
    }.items()
}


def tenant_snapshot(*records: CredentialRecord) -> ClusterSnapshot:
    return ClusterSnapshot({r.key: r for r in records}, TENANT_NAMESPACES, (), (), {})


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({}, {"a-1", "a-2"}, id="every namespace of its tenant"),
        pytest.param({"namespaces": ["*"]}, {"a-1", "a-2"}, id="a glob naming all namespaces"),
        pytest.param({"namespaces": ["b-1", "a-2"]}, {"a-2"}, id="another tenant's namespace by name"),
        pytest.param({"namespaceSelector": {"matchLabels": {"tenant": "b"}}}, set(), id="a selector for another tenant"),
    ],
)
def test_a_tenant_credential_reaches_its_own_tenant_only_whatever_it_selects(spec, expected):
    record = credential("pull", "red", namespace="a-1", **spec)
    state = tenant_snapshot(record)
    assert {name for name, info in TENANT_NAMESPACES.items() if targets(state, record, info, SCOPE)} == expected


def test_without_a_tenant_label_a_tenant_credential_serves_its_own_namespace_only():
    record = credential("pull", "red", namespace="a-1")
    state = tenant_snapshot(record)
    untenanted = Scope(frozenset())
    assert {name for name, info in TENANT_NAMESPACES.items() if targets(state, record, info, untenanted)} == {"a-1"}


def test_a_tenant_credential_reads_sources_in_its_own_namespace_only():
    record = credential("pull", "red", namespace="a-1")
    content = resolve(tenant_snapshot(record), record, OperatorConfig(operator_namespace="regcred-system"))
    assert [type(problem).__name__ for problem in content.problems] == ["SourceMissingError"]
    assert "a-1/pull-pw" in str(content.problems[0])


def test_a_cluster_credential_keeps_a_name_a_tenant_credential_also_wants():
    platform = credential("platform", "red", secret_name="pull")
    tenant = credential("tenant", "red", secret_name="pull", namespace="a-1")
    state = tenant_snapshot(platform, tenant)
    assert namespace_view(state, tenant, "a-2", SCOPE).claimed_by == "platform"
    assert namespace_view(state, platform, "a-2", SCOPE).claimed_by is None
