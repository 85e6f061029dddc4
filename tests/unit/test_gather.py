"""Which credentials an event concerns, and which namespaces a credential touches (pure, on a snapshot)."""

from __future__ import annotations

from typing import Any

import pytest

from regcred.controller.gather import (
    Scope,
    credentials_for_namespace,
    credentials_for_replica,
    credentials_for_service_account,
    cleanup_namespaces,
    namespace_view,
    namespaces_touched,
    resolve,
    sharers_to_recheck,
    targets,
)
from regcred.config import OperatorConfig
from regcred.controller.state import ClusterSnapshot
from regcred.kube.projections import CredentialRecord, credential_record
from regcred.planning.plan import SecretState, ServiceAccountState, parse_added_annotation
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
    """An account listing what `added` records (`name=credential`, or an old `name`)."""
    entries = tuple(record.partition("=")[0] for record in added)
    return ServiceAccountState(namespace, name, "1", entries, parse_added_annotation(",".join(added)))


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
        account("red-1", "default", ("shared=red",)),
        account("moved", "default", ("shared",)),  # recorded before records named their credential
        account("plain", "default"),
    ),
    source_secrets={},
)


@pytest.mark.parametrize(
    ("namespace", "infos", "expected"),
    [
        ("red-1", [SNAPSHOT.namespace("red-1")], {"red"}),  # green shares its name, not its namespaces
        ("blue-1", [SNAPSHOT.namespace("blue-1")], {"blue"}),
        ("moved", [SNAPSHOT.namespace("moved")], {"red", "blue"}),
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
        ([None, replica("red-1", "shared", "red")], {"red"}),  # green wants "shared", but not in red-1
        ([replica("plain", "someone-elses", None)], set()),
    ],
)
def test_a_replica_event_concerns_its_owner_and_the_credentials_wanting_its_name_there(replicas, expected):
    namespace = next(replica.namespace for replica in replicas if replica is not None)
    assert credentials_for_replica(SNAPSHOT, namespace, replicas, SCOPE) == expected


def test_a_replica_event_wakes_a_credential_that_wants_its_name_in_that_namespace():
    taker = credential("taker", "blue", secret_name="shared")
    snapshot = ClusterSnapshot(
        {**SNAPSHOT.credentials_by_key, taker.key: taker}, SNAPSHOT.namespaces_by_name, SNAPSHOT.replicas,
        SNAPSHOT.service_accounts, {},
    )
    # red's copy in "moved" (now team=blue) went: taker may hold the name there now.
    assert credentials_for_replica(snapshot, "moved", [replica("moved", "shared", "red"), None], SCOPE) == {"red", "taker"}


@pytest.mark.parametrize(
    ("namespace", "accounts", "expected"),
    [
        ("blue-1", [None, account("blue-1", "builder")], {"blue"}),
        ("plain", [account("plain", "builder")], set()),
        ("plain", [account("plain", "builder", ("shared=red",)), None], {"red"}),
        ("moved", [account("moved", "builder", ("shared",))], {"red", "blue"}),  # old record: the copy's owner
        ("plain", [account("plain", "builder", ("shared",))], set()),  # old record, no copy: nobody's
    ],
)
def test_a_service_account_event_concerns_the_targeting_credentials_and_its_entries(namespace, accounts, expected):
    assert credentials_for_service_account(SNAPSHOT, namespace, accounts, SCOPE) == expected


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (RED, {"red-1", "moved"}),  # targets red-1; left a replica and an entry in moved
        (BLUE, {"blue-1", "moved"}),
        # Green shares red's secret name, but red's records and copies name red.
        (GREEN, set()),
    ],
)
def test_a_credential_touches_what_it_targets_and_where_it_left_something(record, expected):
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


# A platform credential serving every namespace of the cluster, and a tenant credential
# (home a-1) that names the platform's secret: its work must stay in tenant a.
PLATFORM = credential("platform", "red", secret_name="pull")
MIMIC = credential("pull", "red", secret_name="pull", namespace="a-1")
SHARED_NAME = ClusterSnapshot(
    {record.key: record for record in (PLATFORM, MIMIC)},
    TENANT_NAMESPACES,
    tuple(replica(name, "pull", "platform") for name in TENANT_NAMESPACES),
    tuple(account(name, "default", ("pull=platform",)) for name in TENANT_NAMESPACES),
    {},
)


def test_a_tenant_credential_named_like_the_platforms_secret_touches_its_tenant_only():
    assert namespaces_touched(SHARED_NAME, MIMIC, SCOPE) == {"a-1", "a-2"}
    assert cleanup_namespaces(SHARED_NAME, MIMIC) == set()


def test_a_tenant_credential_changing_rechecks_the_platform_in_its_tenant_only():
    assert sharers_to_recheck(SHARED_NAME, None, MIMIC, SCOPE) == {("platform", "a-1"), ("platform", "a-2")}
    assert sharers_to_recheck(SHARED_NAME, MIMIC, None, SCOPE) == {("platform", "a-1"), ("platform", "a-2")}
    # The platform changing rechecks the tenant credential where it could serve, nowhere else.
    assert sharers_to_recheck(SHARED_NAME, None, PLATFORM, SCOPE) == {("a-1_pull", "a-1"), ("a-1_pull", "a-2")}


def test_service_account_events_outside_its_tenant_do_not_concern_a_tenant_credential():
    for namespace in ("b-1", "free"):
        found = credentials_for_service_account(SHARED_NAME, namespace, [account(namespace, "default", ("pull=platform",))], SCOPE)
        assert found == {"platform"}


def test_a_tenant_credential_whose_key_does_not_fit_a_label_is_refused_and_cleans_up_by_key():
    long_home = "a" * 56
    record = credential("platform-pull", "red", secret_name=None, namespace=long_home)
    assert record.spec is not None and record.refusal and "62" in record.refusal
    assert not record.usable and record.secret_name is None
    state = ClusterSnapshot(
        {record.key: record}, {long_home: NamespaceInfo(long_home, {"tenant": "a"}), **TENANT_NAMESPACES},
        (replica("b-1", "platform-pull", "platform"),),
        (account("b-1", "default", ("platform-pull=platform",)), account("b-1", "builder", ("platform-pull",))),
        {},
    )
    assert namespaces_touched(state, record, SCOPE) == set()


def test_a_credential_is_finalized_only_once_kopfs_finalizer_is_on_it():
    body = {"metadata": {"name": "c", "uid": "u"}, "spec": {"registries": []}}
    assert not credential_record(body).finalized
    body["metadata"]["finalizers"] = ["example.com/other", "regcred.dev/cleanup"]
    assert credential_record(body).finalized
