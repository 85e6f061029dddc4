"""Turning plans into a reviewer's rows, summaries and Pod pull verdicts."""

from __future__ import annotations

import pytest

from regcred.planning.plan import (
    NamespacePlan,
    Outcome,
    OutcomeKind,
    SecretCreate,
    SecretDelete,
    SecretUpdate,
    ServiceAccountEdit,
    ServiceAccountState,
)
from regcred.planning.preview import describe, pull_failure, summarize

SYNCED = Outcome(OutcomeKind.SYNCED)
DEFAULT_SA = ServiceAccountState("ns", "default", "1", ("other",), ())


def sa_edit(entries: tuple[str, ...]) -> ServiceAccountEdit:
    return ServiceAccountEdit("ns", "default", "1", entries, ())


@pytest.mark.parametrize(
    ("writes", "outcome", "replica", "accounts"),
    [
        ((), SYNCED, "", ()),
        ((SecretCreate("ns", "pull", {}), sa_edit(("other", "pull"))), SYNCED, "create", ("default+pull",)),
        ((SecretUpdate("ns", "pull", "1", {}),), SYNCED, "update", ()),
        ((SecretDelete("ns", "pull", "1"), SecretCreate("ns", "pull", {})), SYNCED, "recreate", ()),
        ((sa_edit(()), SecretDelete("ns", "pull", "1")), Outcome(OutcomeKind.UNTARGETED), "delete", ("default-other",)),
        ((SecretDelete("ns", "old", "1"),), SYNCED, "delete old (former name)", ()),
    ],
)
def test_describe(writes, outcome, replica, accounts):
    row = describe(NamespacePlan("ns", writes, outcome), "pull", [DEFAULT_SA])
    assert (row.replica, row.service_accounts, row.outcome) == (replica, accounts, outcome.kind.value)
    assert row.changes == bool(writes)


def test_summarize_counts_each_kind_of_change():
    plans = [
        NamespacePlan("a", (SecretCreate("a", "pull", {}), sa_edit(("other", "pull"))), SYNCED),
        NamespacePlan("b", (SecretUpdate("b", "pull", "1", {}),), SYNCED),
        NamespacePlan("c", (SecretDelete("c", "pull", "1"),), Outcome(OutcomeKind.UNTARGETED)),
        NamespacePlan("d", (), Outcome(OutcomeKind.CONFLICT, "SecretExists")),
        NamespacePlan("e", (), SYNCED),
    ]
    summary = summarize(describe(plan, "pull", [DEFAULT_SA]) for plan in plans)
    assert (summary.gain, summary.update, summary.lose, summary.service_accounts, summary.conflicts) == (1, 1, 1, 1, 1)
    assert summary.changes
    assert not summarize([describe(plans[-1], "pull", [])]).changes


@pytest.mark.parametrize(
    ("reason", "message", "verdict"),
    [
        ("FailedToRetrieveImagePullSecret", "Unable to retrieve some image pull secrets (x)", "pull secret missing"),
        ("Failed", 'Failed to pull image "r.example/app": 401 Unauthorized', "registry refused the credentials"),
        ("Failed", "Failed to pull image: pull access denied, authentication required", "registry refused the credentials"),
        ("Failed", 'Failed to pull image "r.example/app": not found', None),
        ("Failed", "Error: container has runAsNonRoot and image will run as root", None),
        ("BackOff", "Back-off pulling image", None),
    ],
)
def test_pull_failure(reason, message, verdict):
    assert pull_failure(reason, message) == verdict
