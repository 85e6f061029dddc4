"""Applying a namespace plan: the writes, their write-through to the caches, and re-planning.

Sync and cleanup share `converge`: plan from the caches, write, and on a 409 re-read
what the plan writes to and plan again. Counters are owned by their lock.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, fields, replace

from regcred.controller.caches import Caches
from regcred.errors import ConflictError
from regcred.kube.client import JsonObject, KubeClient
from regcred.kube.reads import read_secret_state, read_service_account_state
from regcred.kube.writes import apply_write
from regcred.metrics import Metrics
from regcred.planning.plan import (
    CredentialIntent,
    NamespacePlan,
    NamespaceView,
    Outcome,
    SecretCreate,
    SecretDelete,
    SecretState,
    SecretUpdate,
    ServiceAccountEdit,
    Write,
    plan_namespace,
)

__all__ = ["Applier", "ReconcileStats", "WriteTally"]

log = logging.getLogger(__name__)

MAX_REPLANS = 4  # attempts per namespace when the view turns out stale (409)

_WRITE_LABELS = {
    SecretCreate: ("secrets", "create"),
    SecretUpdate: ("secrets", "update"),
    SecretDelete: ("secrets", "delete"),
    ServiceAccountEdit: ("serviceaccounts", "patch"),
}


@dataclass
class ReconcileStats:
    """Counters the tests and benchmarks read; writes are what the API server saw us send."""

    writes: int = 0
    conflicts: int = 0
    namespace_passes: int = 0
    status_writes: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        # Where each credential's namespace passes went, and how often: a tenant's
        # credential must never pass over another tenant's namespaces, whatever it names,
        # and a namespace planned twice without a change in between is wasted CPU.
        self._passed: dict[str, Counter[str]] = {}

    def count(self, counter: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, counter, getattr(self, counter) + amount)

    def count_pass(self, credential: str, namespace: str) -> None:
        with self._lock:
            self.namespace_passes += 1
            self._passed.setdefault(credential, Counter())[namespace] += 1

    def namespaces_passed(self, credential: str) -> set[str]:
        """The namespaces this credential's passes went over since it was last forgotten."""
        with self._lock:
            return set(self._passed.get(credential, ()))

    def passes_by_namespace(self, credential: str) -> Counter[str]:
        """How many passes this credential made over each namespace since it was last forgotten."""
        with self._lock:
            return Counter(self._passed.get(credential, ()))

    def forget(self, credential: str) -> None:
        with self._lock:
            self._passed.pop(credential, None)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self)}


class WriteTally:
    """Each credential's writes since they were last reported.

    At thousands of namespaces a log line per write costs workers a tenth of their
    time and buries everything else; each write is logged at DEBUG, and at INFO one
    line sums up a credential's writes once its work has settled.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, Counter[tuple[str, str]]] = {}

    def add(self, credential: str, verb: str, resource: str) -> None:
        with self._lock:
            self._counts.setdefault(credential, Counter())[verb, resource] += 1

    def report(self, credential: str) -> None:
        """Log the credential's writes since the last report, if any, and start counting anew."""
        with self._lock:
            counts = self._counts.pop(credential, None)
        if counts:
            summary = ", ".join(f"{verb} {count} {resource}" for (verb, resource), count in sorted(counts.items()))
            log.info("%s wrote: %s", credential, summary, extra={"credential": credential})


class Applier:
    def __init__(self, client: KubeClient, caches: Caches, stats: ReconcileStats, metrics: Metrics) -> None:
        self._client = client
        self._caches = caches
        self.stats = stats
        self._metrics = metrics
        self.tally = WriteTally()

    def converge(
        self, view: NamespaceView, intent: CredentialIntent, gather: Callable[[], NamespaceView]
    ) -> Outcome:
        """Plan and apply one namespace; after a conflict, refresh the caches and `gather` again."""
        for _ in range(MAX_REPLANS):
            if view.targeted:
                view = self._with_data(view, intent.secret_name)
            plan = plan_namespace(view, intent)
            try:
                self.apply(plan, intent.name)
                return plan.outcome
            except ConflictError as conflict:
                self.stats.count("conflicts")
                log.debug("namespace %s: %s; re-planning from fresh reads", view.namespace, conflict)
                self.refresh(view)
                view = gather()
        raise ConflictError(f"namespace {view.namespace}: objects kept changing while being written")

    def apply(self, plan: NamespacePlan, credential: str) -> None:
        for write in plan.writes:
            self.count_write(*_WRITE_LABELS[type(write)])
            informer = (
                self._caches.service_account_informer
                if isinstance(write, ServiceAccountEdit)
                else self._caches.replica_informer
            )
            try:
                # The watch echo of this write is no change to plan again for.
                with informer.writing((write.namespace, write.name)):
                    result = apply_write(self._client, write)
                    self._write_through(write, result)
            except ConflictError:
                if isinstance(write, SecretCreate):
                    self._learn_existing(write.namespace, write.name)
                raise
            resource, verb = _WRITE_LABELS[type(write)]
            self.tally.add(credential, verb, resource)
            log.debug(
                "%s %s %s/%s", verb, resource, write.namespace, write.name,
                extra={"credential": credential, "namespace": write.namespace},
            )

    def _write_through(self, write: Write, result: JsonObject | None) -> None:
        match write:
            case SecretDelete():
                self._caches.replica_informer.forget((write.namespace, write.name), write.resource_version)
            case SecretCreate() | SecretUpdate():
                assert result is not None
                self._caches.replica_informer.observe(result)
                self._caches.foreign.drop(write.namespace, write.name)
            case ServiceAccountEdit():
                assert result is not None
                self._caches.service_account_informer.observe(result)

    def _with_data(self, view: NamespaceView, name: str) -> NamespaceView:
        """The view with the type and data digest of the Secret the plan may write to.

        The caches hold Secrets' metadata, and the digest of what the operator last wrote
        or read at a resourceVersion; when the version moved since (someone else wrote
        it, or the operator restarted), read it once. Only this one Secret's data is ever
        read: others labelled like replicas cost the operator nothing.
        """
        existing = view.secrets.get(name)
        if existing is None or existing.digest is not None:
            return view
        fresh = read_secret_state(self._client, view.namespace, name)
        self._note_secret(view.namespace, name, fresh)
        secrets = {key: state for key, state in view.secrets.items() if key != name}
        if fresh is not None:
            secrets[name] = fresh
        return replace(view, secrets=secrets)

    def count_write(self, resource: str, verb: str) -> None:
        self.stats.count("writes")
        self._metrics.writes.labels(resource, verb).inc()

    def _learn_existing(self, namespace: str, name: str) -> None:
        """A create hit an existing Secret: find out whose it is."""
        self._note_secret(namespace, name, read_secret_state(self._client, namespace, name))

    def _note_secret(self, namespace: str, name: str, state: SecretState | None) -> None:
        if state is None:
            self._caches.replica_informer.forget((namespace, name))
            self._caches.foreign.drop(namespace, name)
        elif state.managed and state.credential:
            self._caches.replica_informer.observe_state((namespace, name), state, state.resource_version)
        else:
            self._caches.foreign.put(state)

    def refresh(self, view: NamespaceView) -> None:
        """Re-read what the view's plan writes to; the caches lag behind the API server."""
        for name in view.secrets:
            self._note_secret(view.namespace, name, read_secret_state(self._client, view.namespace, name))
        for account in view.service_accounts:
            key = (view.namespace, account.name)
            fresh = read_service_account_state(self._client, view.namespace, account.name)
            if fresh is None:
                self._caches.service_account_informer.forget(key)
            else:
                self._caches.service_account_informer.observe_state(key, fresh, fresh.resource_version)

    def recheck_foreign(self, secret_name: str, namespaces: set[str]) -> None:
        """Foreign Secrets are not watched: on each full pass, see whether they are still there.

        Only in the credential's own `namespaces`: others' conflicts are theirs to re-read.
        """
        for namespace, name in self._caches.foreign.named(secret_name):
            if namespace not in namespaces:
                continue
            self._note_secret(namespace, name, read_secret_state(self._client, namespace, name))
