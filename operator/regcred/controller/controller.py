"""The controller: informer events become typed work items; workers plan and apply them.

    SyncCredential(c)      resolve c's content; one SyncNamespace per touched namespace;
                           again after the resync period (a delayed item, no timer)
    SyncNamespace(c, ns)   plan (pure) and apply one namespace
    WriteStatus(c)         write status, Events and metrics once namespace work settled
    CleanUp(c)             remove what c added, after its in-flight work, then report
    Verify(c)              registry logins, on their own queue and workers
    FindOrphans            at start and every resync period: keys of replicas and records
                           whose credential is not cached, confirmed by one list of
                           both kinds; a RemoveOrphan for each absent one
    RemoveOrphan(c)        c was absent from the sweep's list: remove what carries its key

Nothing is written for a credential until kopf's finalizer is on it (as the cache sees
it), so a credential deleted before then never had anything to clean up.

The informer caches are the only record of the cluster, RegistryCredentials included;
kopf's one handler asks for a credential's cleanup and waits for it. Events enqueue only the
credentials they concern (see `gather`). No kopf here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import assert_never

from regcred.config import OperatorConfig
from regcred.controller.apply import Applier, ReconcileStats
from regcred.controller.caches import Caches, ChangeHandlers
from regcred.controller.gate import CredentialGate
from regcred.controller.gather import (
    Scope,
    cleanup_intent,
    cleanup_namespaces,
    cleanup_view,
    credentials_for_namespace,
    credentials_for_replica,
    credentials_for_service_account,
    intent,
    leftover_namespaces,
    leftovers_intent,
    leftovers_view,
    namespace_view,
    namespaces_touched,
    resolve,
    sharers_to_recheck,
)
from regcred.controller.status import StatusStore
from regcred.controller.stuckpods import StuckPodRestarter
from regcred.controller.verification import VerificationScheduler
from regcred.controller.work import (
    CleanUp,
    FindOrphans,
    RemoveOrphan,
    RetryBackoff,
    SyncCredential,
    SyncNamespace,
    Verify,
    WorkItem,
    WriteStatus,
)
from regcred.controller.worker import start_workers
from regcred.errors import KubeError, UnavailableError
from regcred.kube.client import KubeClient
from regcred.kube.projections import CredentialRecord
from regcred.kube.reads import existing_credential_keys
from regcred.metrics import Metrics
from regcred.planning.plan import Outcome, OutcomeKind, is_credential_key
from regcred.planning.selection import NamespaceInfo
from regcred.planning.sources import ResolvedContent
from regcred.workqueue import WorkQueue

__all__ = ["Controller"]

log = logging.getLogger(__name__)

CACHE_SYNC_TIMEOUT = 120.0
# Verify workers only decide that a check is due and start it in a thread of its own
# (controller/verification.py): a registry that hangs holds no worker.
VERIFY_WORKERS = 2
# How soon a cleanup looks again while the credential's admitted work is still running.
CLEANUP_WAIT_SECONDS = 0.05
# How soon a TenantRegistryCredential's pass looks again while its namespace's Secrets are listed.
SOURCES_WAIT_SECONDS = 0.2


class Controller:
    """Keeps every RegistryCredential's replicas and ServiceAccount entries in the wanted state."""

    def __init__(self, client: KubeClient, config: OperatorConfig, metrics: Metrics | None = None) -> None:
        self.config = config
        self.scope = Scope.of(config)
        self.metrics = metrics or Metrics()
        self.stats = ReconcileStats()
        self.queue = WorkQueue()
        self.verify_queue = WorkQueue()
        self._backoff = RetryBackoff()
        self._workers: list = []
        self.gate = CredentialGate()
        self.caches = Caches(client, config, ChangeHandlers(
            credential=self._on_credential, namespace=self._on_namespace,
            service_account=self._on_service_account, replica=self._on_replica, source=self._on_source,
        ))
        self._client = client
        self.applier = Applier(client, self.caches, self.stats, self.metrics)
        self.status = StatusStore(client, self.caches, self.metrics, lambda: self.stats.count("status_writes"))
        self.verifier = VerificationScheduler(self.verify_queue, config, lambda name: self._settle_status(name))
        self.restarter = StuckPodRestarter(client, self.applier, self.status, self.metrics)
        self.metrics.managed_secrets.set_function(lambda: len(self.caches.replica_informer))

    # -- lifecycle -------------------------------------------------------------
    @property
    def informers(self) -> list:
        return self.caches.informers

    def start(self, wait_synced: bool = True) -> None:
        """Start the watches, wait until every cache is filled, then start the workers."""
        self.caches.start()
        if wait_synced:
            deadline = time.monotonic() + CACHE_SYNC_TIMEOUT
            for informer in self.informers:
                if not informer.synced.wait(max(0.0, deadline - time.monotonic())):
                    raise UnavailableError(f"the {informer.name} cache did not fill in time")
        self._workers += start_workers(
            self.queue, "reconcile", self.config.concurrency, self._process, self._backoff, self.metrics
        )
        self._workers += start_workers(
            self.verify_queue, "verify", VERIFY_WORKERS, self._process, self._backoff, self.metrics
        )
        self.queue.add(FindOrphans())
        log.info("controller started with %d reconcile and %d verify workers", self.config.concurrency, VERIFY_WORKERS)

    def stop(self) -> None:
        self.queue.shutdown()
        self.verify_queue.shutdown()
        self.caches.stop()
        for worker in self._workers:
            worker.join(timeout=10)

    def caches_synced(self) -> bool:
        return all(informer.synced.is_set() for informer in self.informers)

    def health(self) -> tuple[bool, str]:
        """Liveness: every watch thread alive and heard from recently, every worker alive."""
        now = time.monotonic()
        for informer in self.informers:
            if not informer.alive():
                return False, f"the {informer.name} watch thread died"
            if now - informer.last_heard > informer.silence_limit:
                return False, f"the {informer.name} watch has been silent for {now - informer.last_heard:.0f}s"
        if not all(worker.is_alive() for worker in self._workers):
            return False, "a worker thread died"
        return True, "ok"

    def readiness(self) -> tuple[bool, str]:
        if not self.caches_synced():
            return False, "caches are filling"
        return True, "ok"

    def wait_idle(self, timeout: float) -> bool:
        """Block until no work is queued or running, delayed items aside (for tests and the demo)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.queue.busy(lambda item: True):
                return True
            time.sleep(0.05)
        return False

    # -- what kopf asks ----------------------------------------------------------
    def clean_up(self, name: str, uid: str, timeout: float) -> list[str] | None:
        """Run the credential's cleanup through the queue; None while it has not ended in `timeout`."""
        done, new_pass = self.gate.request_cleanup(name, uid)
        if new_pass:
            self.queue.add(CleanUp(name))
        if not done.wait(timeout):
            return None
        return self.gate.cleanup_failures(name)

    # -- triggers (informer threads: enqueue only) ----------------------------------
    def _on_credential(self, name: str, old: CredentialRecord | None, new: CredentialRecord | None) -> None:
        # Status-only updates compare equal (status is not part of equality): no call.
        if new is None and old is not None:
            self.gate.forget(name, old.uid)
        if new is not None and not new.deleting:
            self.queue.add(SyncCredential(name))
        # Credentials that share a secret name may now win or lose namespaces it reaches.
        for credential, namespace in sharers_to_recheck(self.caches, old, new, self.scope):
            self.queue.add(SyncNamespace(credential, namespace))

    def _on_namespace(self, name: str, old: NamespaceInfo | None, new: NamespaceInfo | None) -> None:
        for credential in credentials_for_namespace(self.caches, name, (old, new), self.scope):
            self.queue.add(SyncNamespace(credential, name))
        # The home of TenantRegistryCredentials: a new tenant label moves their whole reach.
        for record in self.caches.credentials_living_in(name):
            self.queue.add(SyncCredential(record.key))

    def _on_service_account(self, key: tuple[str, str], old: object, new: object) -> None:
        if self.caches.namespace(key[0]) is None:
            return  # the namespace is gone or not seen yet; its own event will bring us back
        accounts = (old, new)  # ServiceAccountState or None
        found = credentials_for_service_account(self.caches, key[0], accounts, self.scope)  # type: ignore[arg-type]
        for credential in found:
            self.queue.add(SyncNamespace(credential, key[0]))

    def _on_replica(self, key: tuple[str, str], old: object, new: object) -> None:
        if self.caches.namespace(key[0]) is None:
            return
        replicas = (old, new)  # SecretState or None
        found = credentials_for_replica(self.caches, key[0], replicas, self.scope)  # type: ignore[arg-type]
        for credential in found:
            self.queue.add(SyncNamespace(credential, key[0]))

    def _on_source(self, key: tuple[str, str], old: object, new: object) -> None:
        for record in self.caches.credentials_reading(*key):
            self.queue.add(SyncCredential(record.key))

    # -- workers -------------------------------------------------------------------
    def _process(self, item: WorkItem) -> None:
        match item:
            case CleanUp():
                self._clean_up(item.credential)
                return
            case FindOrphans():
                self._find_orphans()
                return
            case RemoveOrphan():
                self._remove_orphan(item.credential)
                return
        record = self.caches.credential(item.credential)
        if record is None or not record.finalized or not self.gate.enter(record.key, record.uid):
            # Gone; or not yet safe to write for (kopf's finalizer comes with an update,
            # which syncs it); or its cleanup has begun: no work for it now.
            return
        try:
            self._handler(item)(record)
        finally:
            self.gate.leave(record.key)

    def _handler(self, item: SyncCredential | SyncNamespace | WriteStatus | Verify) -> Callable[[CredentialRecord], None]:
        match item:
            case SyncCredential():
                return self._sync_credential
            case SyncNamespace(namespace=namespace):
                return lambda record: self._sync_namespace(record, namespace)
            case WriteStatus():
                return self._write_status
            case Verify():
                return lambda record: self.verifier.verify(record, self._content(record))
            case _:
                assert_never(item)

    def _content(self, record: CredentialRecord) -> ResolvedContent:
        return self.status.content(record.key) or self._resolve(record)

    def _resolve(self, record: CredentialRecord) -> ResolvedContent:
        self.caches.read_sources(record)
        content = resolve(self.caches, record, self.config)
        self.status.set_content(record.key, content)
        return content

    def _settle_status(self, credential: str) -> None:
        self.queue.add(WriteStatus(credential), delay=self.config.status_debounce_seconds)

    def _sync_credential(self, record: CredentialRecord) -> None:
        if record.deleting:
            return
        # The periodic safety net: the queue keeps the earliest of these delayed adds.
        self.queue.add(SyncCredential(record.key), delay=self.config.resync_seconds)
        if not record.usable:
            self.queue.add(WriteStatus(record.key))
            return
        assert record.secret_name is not None
        if record.namespace is not None and not self.caches.sources_synced(record.namespace):
            self.queue.add(SyncCredential(record.key), delay=SOURCES_WAIT_SECONDS)  # its Secrets are being listed
            return
        touched = namespaces_touched(self.caches, record, self.scope)
        self.applier.recheck_foreign(record.secret_name, touched)
        content = self._resolve(record)  # sources may have changed since the last pass
        self.verifier.schedule(record, content)
        self.status.keep_namespaces(record.key, touched)
        for namespace in sorted(touched):
            self.queue.add(SyncNamespace(record.key, namespace))
        self._settle_status(record.key)

    def _sync_namespace(self, record: CredentialRecord, namespace: str) -> None:
        if not record.usable or record.deleting:
            return
        wanted = intent(record, self._content(record))
        self.stats.count_pass(record.key, namespace)
        info = self.caches.namespace(namespace)
        outcome = Outcome(OutcomeKind.UNTARGETED)
        if info is not None and not info.terminating:
            gather = lambda: namespace_view(self.caches, record, namespace, self.scope)  # noqa: E731
            try:
                outcome = self.applier.converge(gather(), wanted, gather)
            except KubeError as error:
                self.status.record_outcome(record.key, namespace, Outcome(OutcomeKind.FAILED, "WriteFailed", str(error)))
                self._settle_status(record.key)
                raise
        self.status.record_outcome(record.key, namespace, outcome)
        self._settle_status(record.key)
        self.restarter.handle(record, namespace, outcome, self.caches.service_accounts_in(namespace))

    def _write_status(self, record: CredentialRecord) -> None:
        if self.queue.busy(lambda item: isinstance(item, SyncNamespace) and item.credential == record.key):
            self._settle_status(record.key)  # namespace work is still running: write once it settled
            return
        if (delay := self.status.write_delay(record.key)) > 0:
            self.queue.add(WriteStatus(record.key), delay=delay)
            return
        self.applier.tally.report(record.key)
        if record.deleting:
            return
        content = self._content(record) if record.usable else None
        self.status.write(record, content, self.verifier.checks_for(record, content))

    def _clean_up(self, name: str) -> None:
        uid = self.gate.requested_uid(name)
        record = self.caches.credential(name)
        if uid is None:
            return
        if record is None or record.uid != uid:
            self.gate.report_cleanup(name, uid, [])  # gone from the cluster: nothing of it is left to us
            return
        if not self.gate.close(name, uid):
            self.queue.add(CleanUp(name), delay=CLEANUP_WAIT_SECONDS)  # admitted work still running
            return
        failures = []
        for namespace in sorted(cleanup_namespaces(self.caches, record)):
            if self.caches.namespace(namespace) is None:
                continue
            gather = lambda: cleanup_view(self.caches, record, namespace, self.scope)  # noqa: E731
            try:
                self.applier.converge(gather(), cleanup_intent(record), gather)
            except KubeError as error:
                failures.append(f"{namespace}: {error}")
        self.applier.tally.report(name)
        if not failures:
            self.status.forget(name)
            self.verifier.forget(name)
            self.stats.forget(name)
        self.gate.report_cleanup(name, uid, failures)

    def _find_orphans(self) -> None:
        self.queue.add(FindOrphans(), delay=self.config.resync_seconds)
        # A label or record someone wrote by hand may name no possible credential: skip it.
        uncached = {
            key for key in self.caches.credentials_with_traces()
            if is_credential_key(key) and self.caches.credential(key) is None
        }
        if not uncached:
            return
        # One list of both kinds confirms them all (the cache may not have seen a new one
        # yet): a tenant who writes many keys into its ServiceAccounts' records costs one
        # list a sweep, not a request per key.
        for key in sorted(uncached - existing_credential_keys(self._client)):
            self.queue.add(RemoveOrphan(key))

    def _remove_orphan(self, key: str) -> None:
        """Remove what a credential left behind, once the API server said it is gone.

        Only replicas with our labels and ServiceAccount records naming `key` (old
        name-only records where its copy is) are touched. A credential created since the
        sweep's list is in the cache before it writes anything, so the cache is asked again.
        """
        if self.caches.credential(key) is not None:
            return
        namespaces = leftover_namespaces(self.caches, key)
        log.info("removing what the deleted credential %s left in %d namespaces", key, len(namespaces),
                 extra={"credential": key})
        for namespace in sorted(namespaces):
            if self.caches.namespace(namespace) is None:
                continue
            gather = lambda: leftovers_view(self.caches, key, namespace)  # noqa: E731
            self.applier.converge(gather(), leftovers_intent(key, "", key.rpartition("_")[2]), gather)
        self.applier.tally.report(key)
