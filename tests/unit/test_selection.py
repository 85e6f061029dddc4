"""Which namespaces a credential selects, and who wins a contested secret name."""

from __future__ import annotations

from typing import Any

import pytest

from regcred.models import LabelSelector, RegistryCredentialSpec
from regcred.planning.selection import (
    DEFAULT_ALWAYS_EXCLUDED,
    Claimant,
    NamespaceInfo,
    claim_winner,
    matches_any_glob,
    matches_label_selector,
    selects_namespace,
    target_namespaces,
    within_tenant,
)

SOURCE = {"dockerConfigSecretRefs": [{"name": "legacy"}]}


def spec(**fields: Any) -> RegistryCredentialSpec:
    return RegistryCredentialSpec.model_validate({**SOURCE, **fields})


def requirement(key: str, operator: str, *values: str) -> dict[str, Any]:
    return {"key": key, "operator": operator, "values": list(values)}


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        pytest.param(None, {}, True, id="omitted selector matches all"),
        pytest.param({}, {"tenant": "acme"}, True, id="empty selector matches all"),
        pytest.param(
            {"matchLabels": {"tenant": "acme"}}, {"tenant": "acme"}, True, id="matchLabels equal"
        ),
        pytest.param(
            {"matchLabels": {"tenant": "acme"}},
            {"tenant": "beta"},
            False,
            id="matchLabels other value",
        ),
        pytest.param({"matchLabels": {"tenant": "acme"}}, {}, False, id="matchLabels absent"),
        pytest.param(
            {"matchLabels": {"tenant": "acme", "tier": "gold"}},
            {"tenant": "acme"},
            False,
            id="matchLabels all must hold",
        ),
        pytest.param(
            {"matchExpressions": [requirement("env", "In", "prod", "stage")]},
            {"env": "stage"},
            True,
            id="In listed",
        ),
        pytest.param(
            {"matchExpressions": [requirement("env", "In", "prod")]},
            {"env": "dev"},
            False,
            id="In unlisted",
        ),
        pytest.param(
            {"matchExpressions": [requirement("env", "In", "prod")]}, {}, False, id="In absent"
        ),
        pytest.param(
            {"matchExpressions": [requirement("env", "NotIn", "prod")]},
            {"env": "dev"},
            True,
            id="NotIn unlisted",
        ),
        pytest.param(
            {"matchExpressions": [requirement("env", "NotIn", "prod")]},
            {"env": "prod"},
            False,
            id="NotIn listed",
        ),
        pytest.param(
            {"matchExpressions": [requirement("env", "NotIn", "prod")]}, {}, True, id="NotIn absent"
        ),
        pytest.param(
            {"matchExpressions": [requirement("env", "Exists")]},
            {"env": ""},
            True,
            id="Exists empty value",
        ),
        pytest.param(
            {"matchExpressions": [requirement("env", "Exists")]}, {}, False, id="Exists absent"
        ),
        pytest.param(
            {"matchExpressions": [requirement("env", "DoesNotExist")]},
            {},
            True,
            id="DoesNotExist absent",
        ),
        pytest.param(
            {"matchExpressions": [requirement("env", "DoesNotExist")]},
            {"env": "prod"},
            False,
            id="DoesNotExist present",
        ),
        pytest.param(
            {
                "matchLabels": {"tenant": "acme"},
                "matchExpressions": [requirement("env", "In", "prod")],
            },
            {"tenant": "acme", "env": "prod"},
            True,
            id="labels and expressions both hold",
        ),
        pytest.param(
            {
                "matchLabels": {"tenant": "acme"},
                "matchExpressions": [requirement("env", "In", "prod")],
            },
            {"tenant": "acme", "env": "dev"},
            False,
            id="labels hold, expression fails",
        ),
        pytest.param(
            {
                "matchLabels": {"tenant": "acme"},
                "matchExpressions": [requirement("env", "In", "prod")],
            },
            {"tenant": "beta", "env": "prod"},
            False,
            id="expression holds, labels fail",
        ),
        pytest.param(
            {
                "matchExpressions": [
                    requirement("env", "Exists"),
                    requirement("env", "NotIn", "dev"),
                ]
            },
            {"env": "dev"},
            False,
            id="every expression must hold",
        ),
    ],
)
def test_matches_label_selector(
    selector: dict[str, Any] | None, labels: dict[str, str], expected: bool
) -> None:
    parsed = None if selector is None else LabelSelector.model_validate(selector)
    assert matches_label_selector(parsed, labels) is expected


@pytest.mark.parametrize(
    ("name", "globs", "expected"),
    [
        pytest.param("team-a", ["team-a"], True, id="exact name"),
        pytest.param("team-a", ["team-*"], True, id="star matches a run"),
        pytest.param("team-", ["team-*"], True, id="star matches nothing"),
        pytest.param("a-team", ["team-*"], False, id="star anchored at both ends"),
        pytest.param("team-ab", ["team-?"], False, id="question mark is one character"),
        pytest.param("team-b", ["team-?"], True, id="question mark matches one"),
        pytest.param("prod", ["dev", "stage"], False, id="no glob matches"),
        pytest.param("stage", ["dev", "stage"], True, id="any glob matches"),
        pytest.param("anything", [], False, id="no globs"),
    ],
)
def test_matches_any_glob(name: str, globs: list[str], expected: bool) -> None:
    assert matches_any_glob(name, globs) is expected


@pytest.mark.parametrize(
    ("fields", "namespace", "expected"),
    [
        pytest.param({}, NamespaceInfo("app", {}), True, id="no constraints selects all"),
        pytest.param(
            {"namespaces": ["team-*"]}, NamespaceInfo("team-a", {}), True, id="name glob matches"
        ),
        pytest.param(
            {"namespaces": ["team-*"]}, NamespaceInfo("app", {}), False, id="name glob misses"
        ),
        pytest.param(
            {"namespaces": []}, NamespaceInfo("app", {}), False, id="empty namespaces selects none"
        ),
        pytest.param(
            {"namespaces": ["team-*"], "namespaceSelector": {"matchLabels": {"tenant": "acme"}}},
            NamespaceInfo("team-a", {"tenant": "acme"}),
            True,
            id="namespaces and selector both hold",
        ),
        pytest.param(
            {"namespaces": ["team-*"], "namespaceSelector": {"matchLabels": {"tenant": "acme"}}},
            NamespaceInfo("team-a", {"tenant": "beta"}),
            False,
            id="namespaces ANDed with selector",
        ),
        pytest.param(
            {"namespaces": ["team-*"], "namespaceSelector": {"matchLabels": {"tenant": "acme"}}},
            NamespaceInfo("app", {"tenant": "acme"}),
            False,
            id="selector ANDed with namespaces",
        ),
        pytest.param(
            {"namespaces": ["team-*"], "excludeNamespaces": ["team-sandbox"]},
            NamespaceInfo("team-sandbox", {}),
            False,
            id="exclude wins over namespaces",
        ),
        pytest.param(
            {
                "namespaceSelector": {"matchLabels": {"tenant": "acme"}},
                "excludeNamespaces": ["sandbox-*"],
            },
            NamespaceInfo("sandbox-1", {"tenant": "acme"}),
            False,
            id="exclude wins over selector",
        ),
        pytest.param({}, NamespaceInfo("kube-system", {}), False, id="always excluded by default"),
        pytest.param(
            {"namespaces": ["kube-system"]},
            NamespaceInfo("kube-system", {}),
            False,
            id="always excluded even when named",
        ),
        pytest.param(
            {}, NamespaceInfo("app", {}, terminating=True), False, id="terminating never selected"
        ),
    ],
)
def test_selects_namespace(
    fields: dict[str, Any], namespace: NamespaceInfo, expected: bool
) -> None:
    assert selects_namespace(spec(**fields), namespace, DEFAULT_ALWAYS_EXCLUDED) is expected


def test_always_excluded_defaults_are_the_kube_namespaces() -> None:
    assert DEFAULT_ALWAYS_EXCLUDED == {"kube-system", "kube-public", "kube-node-lease"}


@pytest.mark.parametrize(
    ("always_excluded", "expected"),
    [
        pytest.param(DEFAULT_ALWAYS_EXCLUDED, {"default", "team-a"}, id="defaults"),
        pytest.param(
            frozenset(), {"default", "kube-system", "team-a"}, id="operator excludes nothing"
        ),
        pytest.param(frozenset({"default"}), {"kube-system", "team-a"}, id="operator's own list"),
    ],
)
def test_target_namespaces(always_excluded: frozenset[str], expected: set[str]) -> None:
    namespaces = [
        NamespaceInfo("default", {}),
        NamespaceInfo("kube-system", {}),
        NamespaceInfo("team-a", {}),
        NamespaceInfo("team-b", {}, terminating=True),
        NamespaceInfo("sandbox-1", {}),
    ]
    selected = target_namespaces(spec(excludeNamespaces=["sandbox-*"]), namespaces, always_excluded)
    assert selected == expected


@pytest.mark.parametrize(
    ("claimants", "winner"),
    [
        pytest.param([], None, id="nobody"),
        pytest.param([Claimant(False, "2024-05-01T00:00:00Z", "b")], "b", id="sole claimant"),
        pytest.param(
            [Claimant(False, "2024-05-02T00:00:00Z", "a"), Claimant(False, "2024-05-01T00:00:00Z", "z")],
            "z",
            id="older wins over lower name",
        ),
        pytest.param(
            [Claimant(False, "2024-05-01T00:00:00Z", "beta"), Claimant(False, "2024-05-01T00:00:00Z", "alpha")],
            "alpha",
            id="same age: name breaks the tie",
        ),
        pytest.param(
            [
                Claimant(False, "2024-05-01T10:00:00Z", "c"),
                Claimant(False, "2024-05-01T09:59:59Z", "b"),
                Claimant(False, "2024-05-01T10:00:01Z", "a"),
            ],
            "b",
            id="one second older wins",
        ),
        pytest.param(
            [Claimant(True, "2024-05-01T00:00:00Z", "team-a_old"), Claimant(False, "2024-06-01T00:00:00Z", "platform")],
            "platform",
            id="a cluster-scoped credential wins over an older tenant-owned one",
        ),
    ],
)
def test_claim_winner(claimants: list[Claimant], winner: str | None) -> None:
    result = claim_winner(claimants)
    assert (result.name if result else None) == winner
    assert claim_winner(reversed(claimants)) == result, "order of arrival must not matter"


def ns(name: str, **labels: str) -> NamespaceInfo:
    return NamespaceInfo(name, labels)


@pytest.mark.parametrize(
    ("tenant_label", "home", "namespace", "allowed"),
    [
        pytest.param(None, ns("a-1", tenant="a"), ns("a-1", tenant="a"), True, id="its own namespace, no label set"),
        pytest.param(None, ns("a-1", tenant="a"), ns("a-2", tenant="a"), False, id="no tenant label: home only"),
        pytest.param("tenant", ns("a-1", tenant="a"), ns("a-2", tenant="a"), True, id="same tenant"),
        pytest.param("tenant", ns("a-1", tenant="a"), ns("b-1", tenant="b"), False, id="another tenant"),
        pytest.param("tenant", ns("a-1", tenant="a"), ns("free"), False, id="a namespace of no tenant"),
        pytest.param("tenant", ns("x-1"), ns("x-2"), False, id="home of no tenant: no others"),
        pytest.param("tenant", ns("x-1", tenant=""), ns("x-2", tenant=""), False, id="an empty value is no tenant"),
        pytest.param("tenant", None, ns("a-2", tenant="a"), False, id="home not seen yet"),
    ],
)
def test_a_tenant_credential_serves_only_its_tenants_namespaces(tenant_label, home, namespace, allowed):
    assert within_tenant(tenant_label, home, "a-1" if home is None else home.name, namespace) is allowed
