"""What a plan means to a reviewer: per namespace, the replica's fate and the ServiceAccounts' changes.

Pure: `kubectl regcred plan` and `kubectl regcred status` turn NamespacePlans into
these rows and a summary; nothing here knows where the plans came from.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from regcred.planning.plan import (
    NamespacePlan,
    OutcomeKind,
    SecretCreate,
    SecretDelete,
    SecretUpdate,
    ServiceAccountEdit,
    ServiceAccountState,
)

__all__ = [
    "NamespaceChange",
    "PlanSummary",
    "describe",
    "pull_failure",
    "service_account_changes",
    "summarize",
]

# The kubelet's reason when a Pod names a pull secret that does not exist in its namespace.
MISSING_PULL_SECRET_REASON = "FailedToRetrieveImagePullSecret"
# How registries and container runtimes word a refused pull, in the kubelet's "Failed" events.
PULL_AUTH_MARKERS = (
    "unauthorized",
    "authentication required",
    "no basic auth credentials",
    "access denied",
    "denied: requested access",
    "403 forbidden",
)


@dataclass(frozen=True)
class NamespaceChange:
    namespace: str
    # "create", "update", "recreate" (type change), "delete", or "" for none.
    replica: str
    # "name+secret" for an added entry, "name-secret" for a removed one.
    service_accounts: tuple[str, ...]
    outcome: str
    reason: str

    @property
    def changes(self) -> bool:
        return bool(self.replica or self.service_accounts)


def _replica_action(plan: NamespacePlan, secret_name: str) -> str:
    mine = [w for w in plan.writes if not isinstance(w, ServiceAccountEdit) and w.name == secret_name]
    kinds = {type(w) for w in mine}
    if kinds == {SecretDelete, SecretCreate}:
        return "recreate"
    if SecretCreate in kinds:
        return "create"
    if SecretUpdate in kinds:
        return "update"
    if SecretDelete in kinds:
        return "delete"
    return ""


def service_account_changes(
    edit: ServiceAccountEdit, before: ServiceAccountState | None
) -> tuple[str, ...]:
    """The entries an edit adds and removes, as `name+secret` / `name-secret`."""
    old = set(before.image_pull_secrets) if before else set()
    new = set(edit.image_pull_secrets)
    return tuple(
        [f"{edit.name}+{entry}" for entry in sorted(new - old)]
        + [f"{edit.name}-{entry}" for entry in sorted(old - new)]
    )


def describe(
    plan: NamespacePlan, secret_name: str, accounts: Iterable[ServiceAccountState]
) -> NamespaceChange:
    """One namespace's row; `accounts` are the ServiceAccounts the plan was made against."""
    by_name = {account.name: account for account in accounts}
    entries: list[str] = []
    for write in plan.writes:
        if isinstance(write, ServiceAccountEdit):
            entries.extend(service_account_changes(write, by_name.get(write.name)))
    # Former copies under another name go too; they are part of the replica's story.
    renamed = [
        f"{w.name} (former name)"
        for w in plan.writes
        if isinstance(w, SecretDelete) and w.name != secret_name
    ]
    replica = _replica_action(plan, secret_name)
    if renamed:
        replica = ", ".join(filter(None, [replica, *(f"delete {r}" for r in renamed)]))
    return NamespaceChange(
        namespace=plan.namespace,
        replica=replica,
        service_accounts=tuple(entries),
        outcome=plan.outcome.kind.value,
        reason=plan.outcome.reason,
    )


@dataclass(frozen=True)
class PlanSummary:
    gain: int = 0
    update: int = 0
    lose: int = 0
    service_accounts: int = 0
    conflicts: int = 0
    failed: int = 0

    @property
    def changes(self) -> bool:
        return bool(self.gain or self.update or self.lose or self.service_accounts)

    def __str__(self) -> str:
        parts = [
            f"{self.gain} namespaces gain the replica",
            f"{self.update} get it updated",
            f"{self.lose} lose it",
            f"{self.service_accounts} ServiceAccount entries change",
            f"{self.conflicts} conflicts",
        ]
        if self.failed:
            parts.append(f"{self.failed} cannot be served")
        return ", ".join(parts)


def summarize(rows: Iterable[NamespaceChange]) -> PlanSummary:
    counts = {"gain": 0, "update": 0, "lose": 0, "service_accounts": 0, "conflicts": 0, "failed": 0}
    for row in rows:
        action = row.replica.split(",", 1)[0].split(" ", 1)[0]
        if action == "create":
            counts["gain"] += 1
        elif action in ("update", "recreate"):
            counts["update"] += 1
        elif action == "delete":
            counts["lose"] += 1
        counts["service_accounts"] += len(row.service_accounts)
        if row.outcome == OutcomeKind.CONFLICT.value:
            counts["conflicts"] += 1
        elif row.outcome == OutcomeKind.FAILED.value:
            counts["failed"] += 1
    return PlanSummary(**counts)


def pull_failure(reason: str, message: str) -> str | None:
    """Why a Pod event says it could not pull for want of credentials, or None."""
    if reason == MISSING_PULL_SECRET_REASON:
        return "pull secret missing"
    lowered = message.lower()
    if reason in ("Failed", "ErrImagePull") and "pull" in lowered and any(m in lowered for m in PULL_AUTH_MARKERS):
        return "registry refused the credentials"
    return None
