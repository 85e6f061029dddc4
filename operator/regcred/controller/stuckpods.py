"""spec.restartStuckPods: delete, once, the Pods admitted before their ServiceAccount listed the secret.

Pods are listed, not watched: a watch would stream every Pod of the cluster into the
operator for the sake of the few credentials that opt in. The list is of one served
namespace's Pending Pods, once per namespace pass, and only while the option is on.
The Pods deleted (by uid) and their owners are owned by the restarter's lock.

The Pod rights are opt-in (deploy/components/restart-stuck-pods): a refusal is reported
in the credential's status (StuckPodRestarts False, with a Warning Event when it turns)
and the pass ends normally, so the namespace work is not retried for it; the next pass
asks again, and so notices the rights once they are granted.
"""

from __future__ import annotations

import logging
import threading

from regcred.controller.apply import MAX_REPLANS, Applier
from regcred.controller.status import StatusStore
from regcred.errors import ConflictError, ForbiddenError
from regcred.kube.client import KubeClient
from regcred.kube.projections import CredentialRecord
from regcred.kube.reads import list_pending_pods
from regcred.kube.writes import delete_pod, post_event
from regcred.metrics import Metrics
from regcred.planning.plan import Outcome, OutcomeKind, ServiceAccountState
from regcred.planning.stuckpods import PodFacts, plan_stuck_pods

__all__ = ["StuckPodRestarter"]

log = logging.getLogger(__name__)


class StuckPodRestarter:
    def __init__(
        self, client: KubeClient, applier: Applier, status: StatusStore, metrics: Metrics
    ) -> None:
        self._client = client
        self._applier = applier
        self._status = status
        self._metrics = metrics
        self._lock = threading.Lock()
        # Per namespace, the uids of the Pods we deleted and of their owners, while listed.
        self._pods: dict[str, set[str]] = {}
        self._owners: dict[str, set[str]] = {}

    def _recall(self, namespace: str, listed: list[PodFacts]) -> tuple[frozenset[str], frozenset[str]]:
        """The deleted Pods' and their owners' uids among `listed`, forgetting the rest."""
        with self._lock:
            # A uid never comes back: what is no longer listed needs no remembering.
            pods = self._pods.pop(namespace, set()) & {pod.uid for pod in listed}
            owners = self._owners.pop(namespace, set()) & {pod.owner.uid for pod in listed if pod.owner}
            if pods:
                self._pods[namespace] = pods
            if owners:
                self._owners[namespace] = owners
            return frozenset(pods), frozenset(owners)

    def _remember(self, pod: PodFacts) -> None:
        with self._lock:
            self._pods.setdefault(pod.namespace, set()).add(pod.uid)
            if pod.owner is not None:
                self._owners.setdefault(pod.namespace, set()).add(pod.owner.uid)

    def handle(
        self, record: CredentialRecord, namespace: str, outcome: Outcome, accounts: list[ServiceAccountState]
    ) -> None:
        """Delete the stuck Pods a restart would cure; remember the others for status."""
        assert record.spec is not None and record.secret_name is not None
        lists = {account.name: account.image_pull_secrets for account in accounts}
        wanted = (
            record.spec.restart_stuck_pods
            and outcome.kind in (OutcomeKind.SYNCED, OutcomeKind.STALE)
            # Until a ServiceAccount lists the secret no Pod qualifies: spare the list.
            and any(record.secret_name in names for names in lists.values())
        )
        if not wanted:
            self._status.set_stuck(record.key, namespace, ())
            self._status.set_pods_forbidden(record.key, namespace, None)
            return
        try:
            self._restart_stuck(record, namespace, lists)
        except ForbiddenError as refusal:
            log.debug("namespace %s: %s", namespace, refusal, extra={"credential": record.key})
            self._status.set_stuck(record.key, namespace, ())
            self._status.set_pods_forbidden(record.key, namespace, str(refusal))
            return
        self._status.set_pods_forbidden(record.key, namespace, None)

    def _restart_stuck(self, record: CredentialRecord, namespace: str, lists: dict[str, tuple[str, ...]]) -> None:
        assert record.secret_name is not None
        for _ in range(MAX_REPLANS):
            pods = list_pending_pods(self._client, namespace)
            deleted, owners = self._recall(namespace, pods)
            plan = plan_stuck_pods(pods, record.secret_name, lists, deleted, owners)
            self._status.set_stuck(record.key, namespace, tuple(stuck.pod.key for stuck in plan.report))
            try:
                for pod in plan.restart:
                    self._restart(record, pod)
                return
            except ConflictError as conflict:
                # Changed or replaced since the list (maybe deleted by another credential's pass).
                log.debug("namespace %s: %s; listing Pods again", namespace, conflict)
        raise ConflictError(f"namespace {namespace}: Pods kept changing while being restarted")

    def _restart(self, record: CredentialRecord, pod: PodFacts) -> None:
        assert pod.owner is not None and record.secret_name is not None
        self._applier.count_write("pods", "delete")
        if not delete_pod(self._client, pod):
            return  # gone already: nothing restarted by us
        self._remember(pod)
        self._status.count_restart(record)
        self._metrics.restarted_pods.labels(credential=record.key).inc()
        log.info(
            "restarted stuck pod %s/%s of %s %s: its ServiceAccount %s now lists %s",
            pod.namespace, pod.name, pod.owner.kind, pod.owner.name, pod.service_account, record.secret_name,
            extra={"credential": record.key, "namespace": pod.namespace},
        )
        owner = {
            "apiVersion": pod.owner.api_version,
            "kind": pod.owner.kind,
            "name": pod.owner.name,
            "uid": pod.owner.uid,
            "namespace": pod.namespace,
        }
        message = (
            f"deleted Pod {pod.name}: it was created before ServiceAccount {pod.service_account} "
            f"listed the pull secret {record.secret_name} and could not pull its image; "
            f"the {pod.owner.kind} recreates it with the secret"
        )
        post_event(self._client, owner, "Normal", "RestartedStuckPod", message)
