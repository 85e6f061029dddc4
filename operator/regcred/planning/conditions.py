"""Status of a RegistryCredential from the per-namespace outcomes: counts, capped lists, conditions.

`lastTransitionTime` moves only when a condition's status flips, so a pass
over a converged cluster yields a status equal to the one already stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from regcred.errors import SourceError
from regcred.models import Condition, NamespaceIssue, RegistryCheck, RegistryCredentialStatus, RegistryOverride
from regcred.planning.plan import Outcome, OutcomeKind
from regcred.planning.verification import CREDENTIALS_VALID, credentials_condition

__all__ = [
    "MAX_LISTED_NAMESPACES",
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
MAX_LISTED_NAMESPACES = 50
MAX_LISTED_PODS = 50


def merge_condition(previous: Iterable[Condition], new: Condition) -> Condition:
    """Keep the previous transition time when the status did not flip."""
    for old in previous:
        if old.type == new.type and old.status == new.status:
            return new.model_copy(update={"last_transition_time": old.last_transition_time})
    return new


def _issues(outcomes: Mapping[str, Outcome], kind: OutcomeKind) -> list[NamespaceIssue]:
    names = sorted(ns for ns, outcome in outcomes.items() if outcome.kind is kind)
    return [
        NamespaceIssue(namespace=ns, reason=outcomes[ns].reason, message=outcomes[ns].message)
        for ns in names[:MAX_LISTED_NAMESPACES]
    ]


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
        source = ("False", problems[0].reason, "; ".join(str(p) for p in problems))
    ready = _ready_condition(matched, synced, failed, conflicted, source_ok)
    wanted = [(READY, ready), (SOURCE_VALID, source)]
    if registry_checks is not None:
        wanted.append((CREDENTIALS_VALID, credentials_condition(registry_checks)))
    if pods_forbidden is not None:
        wanted.append((STUCK_POD_RESTARTS, _stuck_pod_restarts_condition(pods_forbidden)))
    conditions = [
        merge_condition(
            previous_conditions,
            Condition(
                type=kind,
                status=status,
                reason=reason,
                message=message,
                observed_generation=generation,
                last_transition_time=now,
            ),
        )
        for kind, (status, reason, message) in wanted
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
        overridden_registries=list(overrides),
        registry_checks=list(registry_checks or []),
        restarted_pods=restarted_pods,
        stuck_pods=sorted(stuck_pods)[:MAX_LISTED_PODS],
        conditions=conditions,
    )
