"""What the controller has learnt per credential, and the status, Events and metrics it makes.

Namespace outcomes, the resolved content, stuck Pods and restart counts are written by
many workers and read by the status writer: all of it is owned by this store's lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from regcred.controller.caches import Caches
from regcred.controller.clock import utc_now
from regcred.errors import InvalidSpecError
from regcred.kube.client import KubeClient
from regcred.kube.projections import CredentialRecord
from regcred.kube.writes import patch_credential_status, post_event
from regcred.metrics import Metrics
from regcred.models import RegistryCheck, RegistryCredentialStatus
from regcred.planning.conditions import READY, SOURCE_VALID, STUCK_POD_RESTARTS, build_status
from regcred.planning.plan import Outcome, OutcomeKind
from regcred.planning.sources import ResolvedContent
from regcred.planning.verification import CREDENTIALS_VALID

__all__ = ["StatusStore"]

log = logging.getLogger(__name__)


# A credential's status is written at most once a second: namespaces arriving one by one
# (a namespace provisioner at 5/s) would otherwise cost a status write each.
MIN_STATUS_INTERVAL_SECONDS = 1.0


class StatusStore:
    def __init__(
        self, client: KubeClient, caches: Caches, metrics: Metrics, on_write: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._caches = caches
        self._metrics = metrics
        self._on_write = on_write
        self._clock = clock
        self._lock = threading.Lock()
        self._written_at: dict[str, float] = {}
        self._outcomes: dict[str, dict[str, Outcome]] = {}
        self._content: dict[str, ResolvedContent] = {}
        self._stuck: dict[str, dict[str, tuple[str, ...]]] = {}  # credential -> namespace -> Pod keys
        # credential -> namespace -> why listing or deleting its Pods was refused
        self._pods_forbidden: dict[str, dict[str, str]] = {}
        self._restarted: dict[str, int] = {}

    # -- what workers learn ------------------------------------------------------
    def content(self, credential: str) -> ResolvedContent | None:
        with self._lock:
            return self._content.get(credential)

    def set_content(self, credential: str, content: ResolvedContent) -> None:
        with self._lock:
            self._content[credential] = content

    def record_outcome(self, credential: str, namespace: str, outcome: Outcome) -> None:
        with self._lock:
            outcomes = self._outcomes.setdefault(credential, {})
            if outcome.kind is OutcomeKind.UNTARGETED:
                outcomes.pop(namespace, None)
            else:
                outcomes[namespace] = outcome

    def keep_namespaces(self, credential: str, touched: set[str]) -> None:
        """Forget namespaces that no longer exist or no longer concern the credential."""
        with self._lock:
            kept = (self._outcomes, self._stuck, self._pods_forbidden)
            for per_namespace in (per_credential.get(credential, {}) for per_credential in kept):
                for gone in set(per_namespace) - touched:
                    del per_namespace[gone]

    def set_stuck(self, credential: str, namespace: str, pods: tuple[str, ...]) -> None:
        with self._lock:
            if pods:
                self._stuck.setdefault(credential, {})[namespace] = pods
            else:
                self._stuck.get(credential, {}).pop(namespace, None)

    def set_pods_forbidden(self, credential: str, namespace: str, refusal: str | None) -> None:
        """The API server's refusal of the Pod requests spec.restartStuckPods makes, or None."""
        with self._lock:
            if refusal is not None:
                self._pods_forbidden.setdefault(credential, {})[namespace] = refusal
            else:
                self._pods_forbidden.get(credential, {}).pop(namespace, None)

    def count_restart(self, record: CredentialRecord) -> None:
        with self._lock:
            self._restarted[record.key] = self._restarted_pods(record) + 1

    def _restarted_pods(self, record: CredentialRecord) -> int:
        # Counted here, starting from the status (kept across operator restarts).
        return self._restarted.get(record.key, record.status.restarted_pods if record.status else 0)

    def write_delay(self, credential: str) -> float:
        """How long until the credential's status may be written again."""
        with self._lock:
            written_at = self._written_at.get(credential)
        if written_at is None:
            return 0.0
        return max(0.0, written_at + MIN_STATUS_INTERVAL_SECONDS - self._clock())

    def forget(self, credential: str) -> None:
        with self._lock:
            for per_credential in (
                self._outcomes, self._content, self._stuck, self._pods_forbidden, self._restarted, self._written_at
            ):
                per_credential.pop(credential, None)
        self._metrics.forget_credential(credential)

    # -- status ------------------------------------------------------------------
    def status_for(
        self, record: CredentialRecord, content: ResolvedContent | None, checks: list[RegistryCheck] | None
    ) -> RegistryCredentialStatus:
        """The status the credential should carry now."""
        if not record.usable or content is None:
            return build_status(
                previous=record.status, generation=record.generation, secret_name=record.name,
                content_hash=None, problems=[InvalidSpecError(record.problem or "invalid spec")],
                overrides=[], outcomes={}, now=utc_now(),
            )
        with self._lock:
            outcomes = dict(self._outcomes.get(record.key, {}))
            stuck_pods = [key for keys in self._stuck.get(record.key, {}).values() for key in keys]
            restarted_pods = self._restarted_pods(record)
            pods_forbidden = (
                dict(self._pods_forbidden.get(record.key, {})) if record.spec.restart_stuck_pods else None
            )
        assert record.secret_name is not None
        return build_status(
            previous=record.status,
            generation=record.generation,
            secret_name=record.secret_name,
            content_hash=content.content_hash,
            problems=content.problems,
            overrides=content.overrides,
            outcomes=outcomes,
            now=utc_now(),
            registry_checks=checks,
            restarted_pods=restarted_pods,
            stuck_pods=stuck_pods,
            pods_forbidden=pods_forbidden,
        )

    def write(
        self, record: CredentialRecord, content: ResolvedContent | None, checks: list[RegistryCheck] | None
    ) -> None:
        """Export the status as metrics; write it and announce transitions when it changed."""
        status = self.status_for(record, content, checks)
        self._export(record.key, status)
        previous = record.status
        if previous is not None and previous.model_dump() == status.model_dump():
            return
        body = status.model_dump(by_alias=True, exclude_none=True)
        result = patch_credential_status(self._client, record, body)
        with self._lock:
            self._written_at[record.key] = self._clock()
        self._on_write()
        informer = self._caches.tenant_credential_informer if record.tenant_owned else self._caches.credential_informer
        informer.observe(result)
        self._announce_transitions(record, previous, status)

    def _export(self, credential: str, status: RegistryCredentialStatus) -> None:
        with self._lock:
            kinds = [outcome.kind for outcome in self._outcomes.get(credential, {}).values()]
        self._metrics.set_namespace_counts(credential, {
            "matched": status.matched_namespaces,
            "synced": status.synced_namespaces,
            # Uncapped, unlike the lists in status.
            "failed": kinds.count(OutcomeKind.FAILED),
            "conflicted": kinds.count(OutcomeKind.CONFLICT),
        })
        if any(c.type == READY and c.status == "True" for c in status.conditions):
            self._metrics.last_sync.labels(credential=credential).set(time.time())

    def _announce_transitions(
        self, record: CredentialRecord, previous: RegistryCredentialStatus | None, current: RegistryCredentialStatus
    ) -> None:
        before = {c.type: c.status for c in (previous.conditions if previous else [])}
        for condition in current.conditions:
            if before.get(condition.type) == condition.status:
                continue
            log.info(
                "%s is now %s: %s", condition.type, condition.status, condition.message,
                extra={"credential": record.key, "reason": condition.reason},
            )
            if condition.type == READY and condition.status == "True":
                post_event(self._client, record.reference, "Normal", condition.reason, condition.message)
            elif condition.type in (READY, SOURCE_VALID, CREDENTIALS_VALID, STUCK_POD_RESTARTS) and (
                condition.status == "False"
            ):
                post_event(self._client, record.reference, "Warning", condition.reason, condition.message)
