"""Which credentials an event concerns, and which namespaces a credential touches (pure, on a snapshot)."""

from __future__ import annotations

from typing import Any

import pytest

from regcred.controller.gather import (
    credentials_for_namespace,
    credentials_for_replica,
    credentials_for_service_account,
    namespaces_touched,
)
from regcred.controller.state import ClusterSnapshot
from regcred.kube.resources import CredentialRecord, credential_record
from regcred.planning.plan import SecretState, ServiceAccountState
from regcred.planning.selection import NamespaceInfo

EXCLUDED = frozenset({"kube-system"})


def credential(name: str, team: str, secret_name: str | None = None, **spec: Any) -> CredentialRecord:
    body = {
        "metadata": {"name": name, "uid": f"uid-{name}", "creationTimestamp": "2026-01-01T00:00:00Z"},
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
    credentials_by_name={record.name: record for record in (RED, BLUE, GREEN)},
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
    assert credentials_for_namespace(SNAPSHOT, namespace, infos, EXCLUDED) == expected


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
    assert credentials_for_service_account(SNAPSHOT, namespace, accounts, EXCLUDED) == expected


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
    assert namespaces_touched(SNAPSHOT, record, EXCLUDED) == expected
