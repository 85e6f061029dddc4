"""Which Pods are stuck for want of the pull secret, and which of them a restart would cure.

A Pod's imagePullSecrets are fixed at admission: the ServiceAccount admission plugin
copies the ServiceAccount's list into a Pod that names none of its own. A Pod admitted
before its ServiceAccount listed the secret keeps failing to pull forever. Deleting it
lets its controller create a new Pod, which is admitted with the ServiceAccount's
current list. Pure: the caller gathers `PodFacts` and the ServiceAccounts' lists.

A Pod is restarted only when all of these hold:
- a container or init container waits in ErrImagePull or ImagePullBackOff;
- it lacks the secret, and its ServiceAccount now lists it;
- it is not being deleted and was not deleted by us before (by uid);
- a controller (ReplicaSet, StatefulSet, DaemonSet, Job) owns it and will recreate it;
- its new Pod would get the secret: its own list is empty or a part of the
  ServiceAccount's (so it was copied from there, not set by the workload's template,
  which the new Pod would carry again), and, when the list is not empty, no Pod of the
  same owner was restarted before (then the template does set it, and a restart
  would only repeat).
Stuck Pods that fail the last two are reported instead, with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "PULL_FAILURE_REASONS",
    "RESTARTABLE_OWNER_KINDS",
    "PodFacts",
    "PodOwner",
    "StuckPod",
    "StuckPodPlan",
    "plan_stuck_pods",
    "stuck_pod_problems",
]

# The kubelet's waiting reasons for a failed pull and the back-off after it.
PULL_FAILURE_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff"})
# Controllers that replace a deleted Pod from their template.
RESTARTABLE_OWNER_KINDS = frozenset({"ReplicaSet", "StatefulSet", "DaemonSet", "Job"})

NO_CONTROLLER = "NoController"
TEMPLATE_SETS_PULL_SECRETS = "TemplateSetsPullSecrets"


@dataclass(frozen=True)
class PodOwner:
    """The Pod's controlling ownerReference."""

    api_version: str
    kind: str
    name: str
    uid: str


@dataclass(frozen=True)
class PodFacts:
    """What deciding about one Pod needs, read from its spec and status."""

    namespace: str
    name: str
    uid: str
    resource_version: str
    owner: PodOwner | None
    service_account: str
    image_pull_secrets: tuple[str, ...]
    # state.waiting.reason of every container and init container that is waiting.
    waiting_reasons: tuple[str, ...]
    deleting: bool

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class StuckPod:
    """A stuck Pod left alone, and why: no controller, or its template sets its own list."""

    pod: PodFacts
    reason: str


@dataclass(frozen=True)
class StuckPodPlan:
    restart: tuple[PodFacts, ...]
    report: tuple[StuckPod, ...]


def _stuck_for_the_secret(
    pod: PodFacts, secret_name: str, accounts: Mapping[str, tuple[str, ...]]
) -> bool:
    return (
        not pod.deleting
        and any(reason in PULL_FAILURE_REASONS for reason in pod.waiting_reasons)
        and secret_name not in pod.image_pull_secrets
        and secret_name in accounts.get(pod.service_account, ())
    )


def plan_stuck_pods(
    pods: Iterable[PodFacts],
    secret_name: str,
    accounts: Mapping[str, tuple[str, ...]],
    deleted_uids: frozenset[str] = frozenset(),
    restarted_owner_uids: frozenset[str] = frozenset(),
) -> StuckPodPlan:
    """Pods of one namespace to delete once, and stuck Pods only to report (both sorted by name).

    `accounts` maps each ServiceAccount's name to its imagePullSecrets; `deleted_uids`
    are Pods we deleted before, `restarted_owner_uids` their owners.
    """
    restart: list[PodFacts] = []
    report: list[StuckPod] = []
    for pod in sorted(pods, key=lambda p: p.name):
        if pod.uid in deleted_uids or not _stuck_for_the_secret(pod, secret_name, accounts):
            continue
        if pod.owner is None or pod.owner.kind not in RESTARTABLE_OWNER_KINDS:
            report.append(StuckPod(pod, NO_CONTROLLER))
            continue
        own = set(pod.image_pull_secrets)
        copied_from_account = own <= set(accounts[pod.service_account])
        if own and (not copied_from_account or pod.owner.uid in restarted_owner_uids):
            report.append(StuckPod(pod, TEMPLATE_SETS_PULL_SECRETS))
            continue
        restart.append(pod)
    return StuckPodPlan(tuple(restart), tuple(report))


def stuck_pod_problems(plan: StuckPodPlan, secret_name: str) -> dict[PodFacts, str]:
    """What to tell a person about each stuck Pod of a plan (`kubectl regcred status`)."""
    problems = {
        pod: f"stuck without {secret_name}, created before its ServiceAccount listed it: "
        "delete it, or set spec.restartStuckPods"
        for pod in plan.restart
    }
    for stuck in plan.report:
        if stuck.reason == NO_CONTROLLER:
            problems[stuck.pod] = f"stuck without {secret_name} and no controller to recreate it: recreate it"
        else:
            problems[stuck.pod] = f"stuck: its template sets imagePullSecrets without {secret_name}"
    return problems
