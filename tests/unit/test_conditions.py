"""Status from per-namespace outcomes: counts, Ready reasons, transition times, capped lists."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from regcred.errors import SourceError, SourceMissingError, SourceWrongTypeError
from regcred.models import Condition, RegistryCredentialStatus, RegistryOverride
from regcred.planning.conditions import (
    MAX_LISTED_NAMESPACES,
    MAX_LISTED_PODS,
    READY,
    SOURCE_VALID,
    STUCK_POD_RESTARTS,
    build_status,
    merge_condition,
)
from regcred.planning.plan import Outcome, OutcomeKind

EARLIER = "2024-05-01T00:00:00Z"
NOW = "2024-05-02T00:00:00Z"

SYNCED = Outcome(OutcomeKind.SYNCED)
UNTARGETED = Outcome(OutcomeKind.UNTARGETED)
STALE = Outcome(OutcomeKind.STALE, "SourceInvalid", "kept the last good copy")
FAILED = Outcome(OutcomeKind.FAILED, "Forbidden", "RBAC said no")
CONFLICT = Outcome(OutcomeKind.CONFLICT, "SecretExists", "taken")
MISSING = SourceMissingError(
    "registries[0].passwordSecretRef: Secret regcred-system/robot not found"
)


def status(
    outcomes: dict[str, Outcome],
    problems: tuple[SourceError, ...] = (),
    previous: RegistryCredentialStatus | None = None,
    content_hash: str | None = "sha256:new",
    overrides: tuple[RegistryOverride, ...] = (),
    now: str = NOW,
) -> RegistryCredentialStatus:
    return build_status(
        previous=previous,
        generation=4,
        secret_name="acme-pull",
        content_hash=content_hash,
        problems=problems,
        overrides=overrides,
        outcomes=outcomes,
        now=now,
    )


def condition(built: RegistryCredentialStatus, kind: str) -> Condition:
    (found,) = [c for c in built.conditions if c.type == kind]
    return found


class ReadyCase(NamedTuple):
    outcomes: dict[str, Outcome]
    problems: tuple[SourceError, ...]
    counts: tuple[int, int, str]  # matched, synced, synced column
    ready: tuple[str, str, str]  # status, reason, message


READY_CASES = {
    "all synced": ReadyCase(
        {"a": SYNCED, "b": SYNCED, "c": UNTARGETED},
        (),
        (2, 2, "2/2"),
        ("True", "Synced", "all 2 matched namespaces synced"),
    ),
    "nothing matched": ReadyCase(
        {}, (), (0, 0, "0/0"), ("True", "Synced", "all 0 matched namespaces synced")
    ),
    "a copy not yet current": ReadyCase(
        {"a": SYNCED, "b": STALE},
        (),
        (2, 1, "1/2"),
        ("False", "Syncing", "1 of 2 namespaces synced"),
    ),
    "a namespace failed": ReadyCase(
        {"a": SYNCED, "b": FAILED},
        (),
        (2, 1, "1/2"),
        ("False", "NamespacesFailed", "1 of 2 namespaces failed to sync"),
    ),
    "a namespace conflicted": ReadyCase(
        {"a": CONFLICT, "b": SYNCED, "c": SYNCED},
        (),
        (3, 2, "2/3"),
        ("False", "NamespacesConflicted", "1 of 3 namespaces have a conflicting Secret"),
    ),
    "failed outranks conflicted": ReadyCase(
        {"a": CONFLICT, "b": FAILED},
        (),
        (2, 0, "0/2"),
        ("False", "NamespacesFailed", "1 of 2 namespaces failed to sync"),
    ),
    "invalid sources outrank everything": ReadyCase(
        {"a": STALE, "b": FAILED, "c": CONFLICT},
        (MISSING,),
        (3, 0, "0/3"),
        ("False", "SourceInvalid", "sources are invalid; existing copies are kept as they were"),
    ),
}


@pytest.mark.parametrize("case", READY_CASES.values(), ids=READY_CASES.keys())
def test_counts_and_ready(case: ReadyCase) -> None:
    built = status(case.outcomes, case.problems)
    assert (built.matched_namespaces, built.synced_namespaces, built.synced) == case.counts
    ready = condition(built, READY)
    assert (ready.status, ready.reason, ready.message) == case.ready


@pytest.mark.parametrize(
    ("problems", "expected"),
    [
        pytest.param((), ("True", "SourcesValid", "all source Secrets are valid"), id="valid"),
        pytest.param(
            (MISSING, SourceWrongTypeError("dockerConfigSecretRefs[0]: wrong type")),
            (
                "False",
                "SourceSecretNotFound",
                f"{MISSING}; dockerConfigSecretRefs[0]: wrong type",
            ),
            id="first problem's reason, every message",
        ),
    ],
)
def test_source_valid_condition(
    problems: tuple[SourceError, ...], expected: tuple[str, str, str]
) -> None:
    source = condition(status({"a": SYNCED}, problems), SOURCE_VALID)
    assert (source.status, source.reason, source.message) == expected


def test_observed_generation_everywhere() -> None:
    built = status({"a": SYNCED})
    assert built.observed_generation == 4
    assert {c.observed_generation for c in built.conditions} == {4}


@pytest.mark.parametrize(
    ("previous_outcome", "outcome", "transition_time"),
    [
        pytest.param(SYNCED, SYNCED, EARLIER, id="unchanged: time kept"),
        pytest.param(FAILED, CONFLICT, EARLIER, id="reason changed, status not: time kept"),
        pytest.param(SYNCED, FAILED, NOW, id="flipped to False: time moves"),
        pytest.param(FAILED, SYNCED, NOW, id="flipped to True: time moves"),
    ],
)
def test_last_transition_time_moves_only_on_a_flip(
    previous_outcome: Outcome, outcome: Outcome, transition_time: str
) -> None:
    previous = status({"a": previous_outcome}, now=EARLIER)
    assert (
        condition(status({"a": outcome}, previous=previous), READY).last_transition_time
        == transition_time
    )


def test_a_converged_pass_rebuilds_an_equal_status() -> None:
    first = status({"a": SYNCED, "b": CONFLICT})
    assert status({"a": SYNCED, "b": CONFLICT}, previous=first) == first


def test_merge_condition_matches_by_type() -> None:
    old = Condition(
        type=SOURCE_VALID,
        status="True",
        reason="SourcesValid",
        message="",
        observed_generation=1,
        last_transition_time=EARLIER,
    )
    new = old.model_copy(update={"type": READY, "last_transition_time": NOW})
    assert merge_condition([old], new).last_transition_time == NOW


@pytest.mark.parametrize(
    ("kind", "field"),
    [
        pytest.param(FAILED, "failed_namespaces", id="failed"),
        pytest.param(CONFLICT, "conflicted_namespaces", id="conflicted"),
    ],
)
def test_namespace_lists_are_sorted_and_capped(kind: Outcome, field: str) -> None:
    count = MAX_LISTED_NAMESPACES + 10
    # Descending names, so an unsorted list would start at the wrong end.
    names = [f"ns-{n:03d}" for n in reversed(range(count))]
    built = status({name: kind for name in names})
    listed = getattr(built, field)
    assert [issue.namespace for issue in listed] == sorted(names)[:MAX_LISTED_NAMESPACES]
    assert (listed[0].reason, listed[0].message) == (kind.reason, kind.message)
    assert built.matched_namespaces == count, "counts are not capped"


def test_content_hash_and_overrides() -> None:
    override = RegistryOverride(server="r.example", used="registries[0]", ignored=["x"])
    previous = status({"a": SYNCED}, content_hash="sha256:old")
    built = status({"a": STALE}, (MISSING,), previous, content_hash=None, overrides=(override,))
    # While sources are invalid the copies in place still carry the previous content.
    assert built.content_hash == "sha256:old"
    assert built.overridden_registries == [override]
    assert built.secret_name == "acme-pull"


def test_stuck_pods_are_sorted_and_capped_and_restarts_counted() -> None:
    pods = [f"ns-{n % 3}/web-{n:03d}" for n in reversed(range(MAX_LISTED_PODS + 10))]
    built = build_status(
        previous=None, generation=1, secret_name="acme-pull", content_hash="sha256:new",
        problems=(), overrides=(), outcomes={"a": SYNCED}, now=NOW,
        restarted_pods=7, stuck_pods=pods,
    )
    assert built.stuck_pods == sorted(pods)[:MAX_LISTED_PODS]
    assert built.restarted_pods == 7
    assert status({"a": SYNCED}).stuck_pods == [] and status({"a": SYNCED}).restarted_pods == 0


REFUSAL = 'GET /api/v1/namespaces/web/pods: pods is forbidden: cannot list resource "pods"'


@pytest.mark.parametrize(
    ("pods_forbidden", "expected"),
    [
        (None, None),  # spec.restartStuckPods off: no condition
        ({}, ("True", "Permitted")),
        ({"web": REFUSAL, "api": REFUSAL}, ("False", "PodAccessForbidden")),
    ],
)
def test_stuck_pod_restarts_condition(
    pods_forbidden: dict[str, str] | None, expected: tuple[str, str] | None
) -> None:
    built = build_status(
        previous=None, generation=1, secret_name="acme-pull", content_hash="sha256:new",
        problems=(), overrides=(), outcomes={"api": SYNCED, "web": SYNCED}, now=NOW,
        pods_forbidden=pods_forbidden,
    )
    found = [c for c in built.conditions if c.type == STUCK_POD_RESTARTS]
    assert [(c.status, c.reason) for c in found] == ([expected] if expected else [])
    assert condition(built, READY).status == "True", "replication does not depend on Pod rights"
    if expected and expected[0] == "False":
        (refused,) = found
        # The first namespace by name, how many, and what grants the rights.
        assert "2 served namespace(s) (api: " in refused.message
        assert "deploy/components/restart-stuck-pods" in refused.message
        assert "restartStuckPods.enabled=true" in refused.message
