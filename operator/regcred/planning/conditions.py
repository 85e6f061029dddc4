"""Status of a RegistryCredential from the per-namespace outcomes: counts, capped lists, conditions.

`lastTransitionTime` moves only when a condition's status flips, so a pass
over a converged cluster yields a status equal to the one already stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from regcred.errors import SourceError
from regcred.models import Condition, NamespaceIssue, RegistryCheck, RegistryCredentialStatus, RegistryOverride
from regcred.planning.caps import (
    MAX_CONDITION_MESSAGE_CHARS,
    MAX_NAME_CHARS,
    capped_join,
    capped_text,
    unlisted,
)
from regcred.planning.plan import Outcome, OutcomeKind
from regcred.planning.verification import CREDENTIALS_VALID, credentials_condition

__all__ = [
    "MAX_LISTED_CHECKS",
    "MAX_LISTED_IGNORED_SOURCES",
    "MAX_LISTED_NAMESPACES",
    "MAX_LISTED_OVERRIDES",
    "MAX_LISTED_PODS",
    "READY",
    "SOURCE_VALID",
    "STUCK_POD_RESTARTS",
    "build_status",
    "merge_condition",
]

READY = "Ready"
SOURCE_VALID = "SourceValid"
STUCK_POD_RESTARTS = "StuckPodRestarts"
# Every list in status is cut to these lengths (its count, where there is one, is not),
# and the cut is told in a condition's message. With the message caps of
# regcred.planning.caps they bound a status to a few hundred kB, whatever the input.
MAX_LISTED_NAMESPACES = 50  # failedNamespaces, conflictedNamespaces: each
MAX_LISTED_PODS = 50
MAX_LISTED_CHECKS = 50
MAX_LISTED_OVERRIDES = 20
MAX_LISTED_IGNORED_SOURCES = 10  # in each override


def merge_condition(previous: Iterable[Condition], new: Condition) -> Condition:
    """Keep the previous transition time when the status did not flip."""
    for old in previous:
        if old.type == new.type and old.status == new.status:
            return new.model_copy(update={"last_transition_time": old.last_transition_time})
    return new


def _issues(outcomes: Mapping[str, Outcome], kind: OutcomeKind) -> list[NamespaceIssue]:
    names = sorted(ns for ns, outcome in outcomes.items() if outcome.kind is kind)
    return [
        NamespaceIssue(
            namespace=ns, reason=outcomes[ns].reason, message=capped_text(outcomes[ns].message)
        )
        for ns in names[:MAX_LISTED_NAMESPACES]
    ]


def _listed_checks(checks: Sequence[RegistryCheck]) -> list[RegistryCheck]:
    return [
        check.model_copy(
            update={"server": capped_text(check.server, MAX_NAME_CHARS), "message": capped_text(check.message)}
        )
        for check in checks[:MAX_LISTED_CHECKS]
    ]


def _listed_overrides(overrides: Sequence[RegistryOverride]) -> tuple[list[RegistryOverride], str]:
    """The overrides for status, and the note on what was cut from them."""
    listed = [
        RegistryOverride(
            server=capped_text(override.server, MAX_NAME_CHARS),
            used=capped_text(override.used, MAX_NAME_CHARS),
            ignored=[
                capped_text(source, MAX_NAME_CHARS) for source in override.ignored[:MAX_LISTED_IGNORED_SOURCES]
            ],
        )
        for override in overrides[:MAX_LISTED_OVERRIDES]
    ]
    note = unlisted("overriddenRegistries", len(overrides), MAX_LISTED_OVERRIDES)
    cut = sum(max(0, len(o.ignored) - MAX_LISTED_IGNORED_SOURCES) for o in overrides[:MAX_LISTED_OVERRIDES])
    if cut:
        note += (
            f"; each of overriddenRegistries lists the first {MAX_LISTED_IGNORED_SOURCES} "
            f"ignored sources, and {cut} more"
        )
    return listed, note


def _message(body: str, notes: str) -> str:
    """A condition's message: the body cut to leave room for the notes on cut lists."""
    return capped_text(body, MAX_CONDITION_MESSAGE_CHARS - len(notes)) + notes


def _ready_condition(
    matched: int, synced: int, failed: int, conflicted: int, source_ok: bool
) -> tuple[str, str, str]:
    if not source_ok:
        return "False", "SourceInvalid", "sources are invalid; existing copies are kept as they were"
    if failed:
        return "False", "NamespacesFailed", f"{failed} of {matched} namespaces failed to sync"
    if conflicted:
        return (
            "False",
            "NamespacesConflicted",
            f"{conflicted} of {matched} namespaces have a conflicting Secret",
        )
    if synced < matched:
        return "False", "Syncing", f"{synced} of {matched} namespaces synced"
    return "True", "Synced", f"all {matched} matched namespaces synced"


def _stuck_pod_restarts_condition(pods_forbidden: Mapping[str, str]) -> tuple[str, str, str]:
    if not pods_forbidden:
        return "True", "Permitted", "stuck Pods in the served namespaces are restarted"
    first = min(pods_forbidden)
    return (
        "False",
        "PodAccessForbidden",
        f"restartStuckPods needs the operator to list and delete Pods, which its RBAC does not "
        f"allow in {len(pods_forbidden)} served namespace(s) ({first}: {pods_forbidden[first]}); "
        f"grant it with deploy/components/restart-stuck-pods or the chart value "
        f"restartStuckPods.enabled=true. Stuck Pods are not restarted meanwhile.",
    )


def build_status(
    *,
    previous: RegistryCredentialStatus | None,
    generation: int,
    secret_name: str,
    content_hash: str | None,
    problems: Sequence[SourceError],
    overrides: Sequence[RegistryOverride],
    outcomes: Mapping[str, Outcome],
    now: str,
    registry_checks: Sequence[RegistryCheck] | None = None,
    restarted_pods: int = 0,
    stuck_pods: Iterable[str] = (),
    pods_forbidden: Mapping[str, str] | None = None,
) -> RegistryCredentialStatus:
    """The status to store; `outcomes` holds one entry per matched namespace.

    `registry_checks` is None when verification is off, else the checks of the
    current content (empty until they are done). `stuck_pods` are "namespace/name"
    of stuck Pods left alone (spec.restartStuckPods), in any order. `pods_forbidden` is
    None when spec.restartStuckPods is off, else the API server's refusal to list or
    delete Pods, by namespace (empty when none was refused).
    """
    counts = {kind: 0 for kind in OutcomeKind}
    for outcome in outcomes.values():
        counts[outcome.kind] += 1
    matched = len(outcomes) - counts[OutcomeKind.UNTARGETED]
    synced = counts[OutcomeKind.SYNCED]
    failed, conflicted = counts[OutcomeKind.FAILED], counts[OutcomeKind.CONFLICT]
    previous_conditions = previous.conditions if previous else []
    source_ok = not problems

    if source_ok:
        source = ("True", "SourcesValid", "all source Secrets are valid")
    else:
        every_problem = capped_join([str(p) for p in problems], MAX_CONDITION_MESSAGE_CHARS)
        source = ("False", problems[0].reason, every_problem)
    stuck = sorted(stuck_pods)
    overrides_listed, overrides_note = _listed_overrides(overrides)
    checks = list(registry_checks or [])
    ready = _ready_condition(matched, synced, failed, conflicted, source_ok)
    ready_notes = (
        unlisted("failedNamespaces", failed, MAX_LISTED_NAMESPACES)
        + unlisted("conflictedNamespaces", conflicted, MAX_LISTED_NAMESPACES)
        + unlisted("stuckPods", len(stuck), MAX_LISTED_PODS)
    )
    wanted = [(READY, ready, ready_notes), (SOURCE_VALID, source, overrides_note)]
    if registry_checks is not None:
        checks_note = unlisted("registryChecks", len(checks), MAX_LISTED_CHECKS)
        wanted.append((CREDENTIALS_VALID, credentials_condition(registry_checks), checks_note))
    if pods_forbidden is not None:
        wanted.append((STUCK_POD_RESTARTS, _stuck_pod_restarts_condition(pods_forbidden), ""))
    conditions = [
        merge_condition(
            previous_conditions,
            Condition(
                type=kind,
                status=status,
                reason=reason,
                message=_message(body, notes),
                observed_generation=generation,
                last_transition_time=now,
            ),
        )
        for kind, (status, reason, body), notes in wanted
    ]
    return RegistryCredentialStatus(
        observed_generation=generation,
        secret_name=secret_name,
        # Keep showing the hash of the copies still in place while sources are invalid.
        content_hash=content_hash or (previous.content_hash if previous else None),
        matched_namespaces=matched,
        synced_namespaces=synced,
        synced=f"{synced}/{matched}",
        failed_namespaces=_issues(outcomes, OutcomeKind.FAILED),
        conflicted_namespaces=_issues(outcomes, OutcomeKind.CONFLICT),
        overridden_registries=overrides_listed,
        registry_checks=_listed_checks(checks),
        restarted_pods=restarted_pods,
        stuck_pods=stuck[:MAX_LISTED_PODS],
        conditions=conditions,
    )
