"""The controller: observe (informers) -> plan (pure) -> apply (writes) -> status. No kopf here.

Every trigger - a credential change, a namespace, ServiceAccount, replica or
source Secret event, the periodic resync - becomes a key on one work queue:

    ("ns", credential, namespace)   plan and apply one namespace
    ("full", credential)            fan out to every namespace the credential touches
    ("status", credential)          write status once the namespace work has settled

Plans are made from the informer caches, so a pass over a converged cluster
reads nothing from the API server and writes nothing; the one exception is
spec.restartStuckPods, whose namespace passes list that namespace's Pending Pods.
"""

from __future__ import annotations

import datetime
import logging
import random
import threading
import time
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

from regcred.config import OperatorConfig
from regcred.errors import ConflictError, InvalidSpecError, KubeError, UnavailableError
from regcred.kube.client import JsonObject, KubeClient
from regcred.kube.informer import Informer, by_name, by_namespace_and_name
from regcred.kube.resources import (
    CREDENTIALS_PATH,
    MANAGED_SECRETS_SELECTOR,
    NAMESPACES_PATH,
    SERVICE_ACCOUNTS_PATH,
    CredentialRecord,
    apply_write,
    credential_record,
    credential_reference,
    delete_pod,
    list_pending_pods,
    namespace_info,
    patch_credential_status,
    post_event,
    read_secret_state,
    read_service_account_state,
    secret_state,
    secrets_path,
    service_account_state,
    source_secret,
)
from regcred.metrics import Metrics
from regcred.models import RegistryCheck, RegistryCredentialStatus
from regcred.planning.conditions import READY, SOURCE_VALID, build_status
from regcred.planning.plan import (
    CredentialIntent,
    NamespacePlan,
    NamespaceView,
    Outcome,
    OutcomeKind,
    SecretCreate,
    SecretDelete,
    SecretState,
    SecretUpdate,
    ServiceAccountEdit,
    plan_namespace,
)
from regcred.planning.selection import Claimant, NamespaceInfo, claim_winner, selects_namespace
from regcred.planning.sources import ResolvedContent, SourceSecret, resolve_content
from regcred.planning.stuckpods import PodFacts, plan_stuck_pods
from regcred.planning.verification import CREDENTIALS_VALID, logins, retry_delay, unsettled
from regcred.registry import check_login
from regcred.workqueue import WorkQueue

__all__ = ["Controller", "Preview", "ReconcileStats", "utc_now"]

log = logging.getLogger(__name__)

MAX_REPLANS = 4  # attempts per namespace when the view turns out stale (409)
MAX_RETRY_DELAY = 60.0
CACHE_SYNC_TIMEOUT = 120.0
# Registry checks wait on the network (seconds per request when a registry hangs), so
# they get their own queue and workers: a slow registry never delays replication.
VERIFY_WORKERS = 2


@dataclass
class ReconcileStats:
    """Counters the tests and benchmarks read; writes are what the API server saw us send."""

    writes: int = 0
    conflicts: int = 0
    namespace_passes: int = 0
    status_writes: int = 0


@dataclass(frozen=True)
class VerificationState:
    """The last registry checks of one credential, for which content, and when the next is due."""

    content_hash: str | None
    checks: tuple[RegistryCheck, ...]
    failures: int  # consecutive checks that could not reach a verdict
    due: float  # monotonic


class RestartMemory:
    """The Pods we deleted (by uid) and their owners, per namespace, while they are still listed."""

    def __init__(self) -> None:
        self._pods: dict[str, set[str]] = {}
        self._owners: dict[str, set[str]] = {}

    def recall(self, namespace: str, listed: list[PodFacts]) -> tuple[frozenset[str], frozenset[str]]:
        """The deleted Pods' and their owners' uids among `listed`, forgetting the rest."""
        # A uid never comes back: what is no longer listed needs no remembering.
        pods = self._pods.pop(namespace, set()) & {pod.uid for pod in listed}
        owners = self._owners.pop(namespace, set()) & {pod.owner.uid for pod in listed if pod.owner}
        if pods:
            self._pods[namespace] = pods
        if owners:
            self._owners[namespace] = owners
        return frozenset(pods), frozenset(owners)

    def remember(self, pod: PodFacts) -> None:
        self._pods.setdefault(pod.namespace, set()).add(pod.uid)
        if pod.owner is not None:
            self._owners.setdefault(pod.namespace, set()).add(pod.owner.uid)


@dataclass(frozen=True)
class Preview:
    """A dry run of one credential: its content (or source problems) and every touched namespace's plan."""

    credential: str
    secret_name: str
    exists: bool
    content: ResolvedContent
    plans: tuple[NamespacePlan, ...]


_WRITE_LABELS = {
    SecretCreate: ("secrets", "create"),
    SecretUpdate: ("secrets", "update"),
    SecretDelete: ("secrets", "delete"),
    ServiceAccountEdit: ("serviceaccounts", "patch"),
}


def _log_fields(key: Hashable) -> dict[str, str]:
    """The credential and namespace of a work item, as structured log fields."""
    _, credential, *rest = key  # type: ignore[misc]
    return {"credential": credential, **({"namespace": rest[0]} if rest else {})}


def utc_now() -> str:
    """The current time as Kubernetes writes it (RFC 3339, UTC, seconds)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Controller:
    """Keeps every RegistryCredential's replicas and ServiceAccount entries in the wanted state."""

    def __init__(self, client: KubeClient, config: OperatorConfig, metrics: Metrics | None = None) -> None:
        self.client = client
        self.config = config
        self.metrics = metrics or Metrics()
        self.stats = ReconcileStats()
        self.queue = WorkQueue()
        self.verify_queue = WorkQueue()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._lock = threading.Lock()
        # Per credential: the last outcome of every namespace it was planned for.
        self._outcomes: dict[str, dict[str, Outcome]] = {}
        self._content: dict[str, ResolvedContent] = {}
        # Secrets with a wanted name that we do not manage (learnt from 409 on create).
        self._foreign: dict[tuple[str, str], SecretState] = {}
        self._attempts: dict[Hashable, int] = {}
        self._last_full: dict[str, float] = {}
        self._verifications: dict[str, VerificationState] = {}
        # spec.restartStuckPods: the Pods we deleted; per credential the stuck Pods left
        # alone (by namespace) and the restarts counted, starting from status.restartedPods.
        self._restarts = RestartMemory()
        self._stuck: dict[str, dict[str, tuple[str, ...]]] = {}
        self._restarted: dict[str, int] = {}

        self.credentials: Informer[str, CredentialRecord] = Informer(
            client, CREDENTIALS_PATH, key=by_name, project=credential_record,
            on_change=self._credential_changed, name="registrycredentials", watch_seconds=config.watch_seconds,
        )
        self.namespaces: Informer[str, NamespaceInfo] = Informer(
            client, NAMESPACES_PATH, key=by_name, project=namespace_info,
            on_change=self._namespace_changed, name="namespaces", watch_seconds=config.watch_seconds,
        )
        self.service_accounts = Informer(
            client, SERVICE_ACCOUNTS_PATH, key=by_namespace_and_name, project=service_account_state,
            on_change=self._namespaced_object_changed, group_by=lambda key: key[0],
            name="serviceaccounts", watch_seconds=config.watch_seconds,
        )
        self.replicas = Informer(
            client, secrets_path(), key=by_namespace_and_name, project=secret_state,
            on_change=self._namespaced_object_changed, label_selector=MANAGED_SECRETS_SELECTOR,
            group_by=lambda key: key[0], name="replica secrets", watch_seconds=config.watch_seconds,
        )
        self.sources = [
            Informer(
                client, secrets_path(namespace), key=by_namespace_and_name, project=source_secret,
                on_change=self._source_changed, name=f"source secrets in {namespace}",
                watch_seconds=config.watch_seconds,
            )
            for namespace in sorted(config.source_namespaces)
        ]
        self.metrics.managed_secrets.set_function(lambda: len(self.replicas))

    # -- lifecycle -------------------------------------------------------------
    @property
    def informers(self) -> list[Informer]:
        return [self.credentials, self.namespaces, self.service_accounts, self.replicas, *self.sources]

    def start(self, wait_synced: bool = True) -> None:
        """Start the watches, wait until every cache is filled, then start the workers."""
        for informer in self.informers:
            informer.start()
        if wait_synced:
            deadline = time.monotonic() + CACHE_SYNC_TIMEOUT
            for informer in self.informers:
                if not informer.synced.wait(max(0.0, deadline - time.monotonic())):
                    raise UnavailableError(f"the {informer.name} cache did not fill in time")
        pools = [(self.queue, "reconcile", self.config.concurrency), (self.verify_queue, "verify", VERIFY_WORKERS)]
        for queue, role, count in pools:
            for index in range(count):
                worker = threading.Thread(target=self._work, args=(queue,), name=f"{role}-{index}", daemon=True)
                worker.start()
                self._workers.append(worker)
        log.info("controller started with %d reconcile and %d verify workers", self.config.concurrency, VERIFY_WORKERS)

    def stop(self) -> None:
        self._stop.set()
        self.queue.shutdown()
        self.verify_queue.shutdown()
        for informer in self.informers:
            informer.stop()
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

    # -- previews (kubectl regcred) -------------------------------------------
    def preview(self, body: JsonObject) -> Preview:
        """What the operator would do for `body` (a RegistryCredential manifest) now. Writes nothing.

        Needs every informer filled first (`Informer.load`, no watch). A credential not yet
        in the cluster is planned as the newest claimant of its secret name.
        """
        name = body.get("metadata", {}).get("name")
        if not name:
            raise InvalidSpecError("metadata.name: required")
        live = self.credentials.get(name)
        metadata = {
            "name": name,
            "uid": live.uid if live else "",
            "generation": 1,
            "creationTimestamp": live.creation_timestamp if live else utc_now(),
        }
        record = credential_record({"metadata": metadata, "spec": body.get("spec")})
        if record.spec is None:
            raise InvalidSpecError(record.spec_error or "spec: invalid")
        assert record.secret_name is not None
        self._learn_secrets_named(record.secret_name)
        content = self._resolve_uncached(record)
        intent = self._intent(record, content)
        plans = tuple(
            plan_namespace(self._view(record, namespace), intent)
            for namespace in sorted(self._namespaces_touched(record))
        )
        return Preview(name, record.secret_name, live is not None, content, plans)

    def _learn_secrets_named(self, name: str) -> None:
        """Secrets with this name that the operator does not manage, in every namespace (one list)."""
        found = self.client.request("GET", secrets_path(), query={"fieldSelector": f"metadata.name={name}"})
        for item in found.get("items", []):
            state = secret_state(item)
            if not (state.managed and state.credential):
                self._foreign[(state.namespace, state.name)] = state

    # -- triggers --------------------------------------------------------------
    def credential_changed(self, body: JsonObject) -> None:
        """A credential was created, changed or resumed: take its body now, then reconcile it."""
        self.credentials.observe(body)
        self.enqueue_full(body["metadata"]["name"])

    def enqueue_full(self, name: str) -> None:
        self._last_full[name] = time.monotonic()
        self.queue.add(("full", name))

    def resync_if_due(self, name: str) -> None:
        """Periodic safety net: a full pass when the last one is older than the resync period."""
        if time.monotonic() - self._last_full.get(name, 0.0) >= self.config.resync_seconds:
            self.enqueue_full(name)

    def _credential_changed(
        self, name: str, old: CredentialRecord | None, new: CredentialRecord | None
    ) -> None:
        # Status-only updates compare equal (status is not part of equality): no work.
        if new is not None and not new.deleting:
            self.enqueue_full(name)
        # Credentials that share a secret name may now win or lose namespaces.
        names = {r.secret_name for r in (old, new) if r is not None and r.secret_name}
        for other in self.credentials.snapshot().values():
            if other.name != name and other.secret_name in names:
                self.enqueue_full(other.name)

    def _namespace_changed(self, name: str, old: NamespaceInfo | None, new: NamespaceInfo | None) -> None:
        for credential in self.credentials.snapshot():
            self.queue.add(("ns", credential, name))

    def _namespaced_object_changed(self, key: tuple[str, str], old: object, new: object) -> None:
        if self.namespaces.get(key[0]) is None:
            return  # the namespace is gone or not seen yet; its own event will bring us back
        for credential in self.credentials.snapshot():
            self.queue.add(("ns", credential, key[0]))

    def _source_changed(self, key: tuple[str, str], old: object, new: object) -> None:
        for record in self.credentials.snapshot().values():
            self.enqueue_full(record.name)

    # -- workers ---------------------------------------------------------------
    def _work(self, queue: WorkQueue) -> None:
        while not self._stop.is_set():
            key = queue.get()
            if key is None:
                return
            kind = key[0]  # type: ignore[index]
            started = time.perf_counter()
            result = "success"
            try:
                self._process(key)
                self._attempts.pop(key, None)
            except KubeError as error:
                result = "error"
                self._retry(queue, key, error)
            except Exception:
                result = "error"
                log.exception("reconcile %s failed unexpectedly", key, extra=_log_fields(key))
                self._retry(queue, key, None)
            finally:
                queue.done(key)
                self.metrics.reconciles.labels(kind=kind, result=result).inc()
                self.metrics.reconcile_seconds.labels(kind=kind).observe(time.perf_counter() - started)

    def _retry(self, queue: WorkQueue, key: Hashable, error: KubeError | None) -> None:
        attempt = self._attempts.get(key, 0) + 1
        self._attempts[key] = attempt
        delay = min(MAX_RETRY_DELAY, 0.5 * 2 ** min(attempt, 8)) * (1 + random.random() / 4)
        if error is not None:
            log.warning(
                "reconcile %s: %s; retry %d in %.1fs", key, error, attempt, delay, extra=_log_fields(key)
            )
        queue.add(key, delay=delay)

    def _process(self, key: Hashable) -> None:
        kind, credential, *rest = key  # type: ignore[misc]
        if kind == "full":
            self._sync_credential(credential)
        elif kind == "ns":
            self._sync_namespace_and_record(credential, rest[0])
        elif kind == "status":
            self._flush_status(credential)
        elif kind == "verify":
            self._verify(credential)

    # -- planning inputs -------------------------------------------------------
    def _source_lookup(self) -> dict[tuple[str, str], SourceSecret]:
        lookup: dict[tuple[str, str], SourceSecret] = {}
        for informer in self.sources:
            lookup.update(informer.snapshot())
        return lookup

    def _resolve(self, record: CredentialRecord) -> ResolvedContent:
        content = self._resolve_uncached(record)
        self._content[record.name] = content
        return content

    def _resolve_uncached(self, record: CredentialRecord) -> ResolvedContent:
        assert record.spec is not None
        return resolve_content(
            record.spec,
            self._source_lookup(),
            default_namespace=self.config.operator_namespace,
            allowed_namespaces=self.config.source_namespaces,
        )

    def _intent(self, record: CredentialRecord, content: ResolvedContent) -> CredentialIntent:
        assert record.spec is not None and record.secret_name is not None
        return CredentialIntent(
            name=record.name,
            uid=record.uid,
            secret_name=record.secret_name,
            service_account_globs=tuple(record.spec.service_accounts),
            docker_config=content.docker_config,
            content_hash=content.content_hash,
        )

    def _targets(self, record: CredentialRecord, namespace: NamespaceInfo | None) -> bool:
        return (
            namespace is not None
            and record.spec is not None
            and not record.deleting
            and selects_namespace(record.spec, namespace, self.config.excluded_namespaces)
        )

    def _holder(self, record: CredentialRecord, namespace: NamespaceInfo | None, targeted: bool) -> str | None:
        """The other credential that holds our secret name in this namespace, if any."""
        claimants = [
            Claimant(other.creation_timestamp, other.name)
            for other in self.credentials.snapshot().values()
            if other.name != record.name
            and other.secret_name == record.secret_name
            and self._targets(other, namespace)
        ]
        if targeted:
            claimants.append(Claimant(record.creation_timestamp, record.name))
        winner = claim_winner(claimants)
        return winner.name if winner is not None and winner.name != record.name else None

    def _view(self, record: CredentialRecord, namespace: str) -> NamespaceView:
        info = self.namespaces.get(namespace)
        targeted = self._targets(record, info)
        secrets = {
            s.name: s
            for s in self.replicas.in_group(namespace)
            if s.credential == record.name or s.name == record.secret_name
        }
        assert record.secret_name is not None
        foreign = self._foreign.get((namespace, record.secret_name))
        if foreign is not None and record.secret_name not in secrets:
            secrets[record.secret_name] = foreign
        return NamespaceView(
            namespace=namespace,
            targeted=targeted,
            claimed_by=self._holder(record, info, targeted),
            secrets=secrets,
            service_accounts=tuple(self.service_accounts.in_group(namespace)),
        )

    def _namespaces_touched(self, record: CredentialRecord) -> set[str]:
        """Every namespace the credential targets or may have left something in."""
        touched = {
            name for name, info in self.namespaces.snapshot().items() if self._targets(record, info)
        }
        for namespace in self.replicas.groups():
            if any(s.credential == record.name for s in self.replicas.in_group(namespace)):
                touched.add(namespace)
        for namespace in self.service_accounts.groups():
            if any(sa.added_by_operator for sa in self.service_accounts.in_group(namespace)):
                touched.add(namespace)
        return touched

    # -- one namespace ---------------------------------------------------------
    def sync_namespace(self, record: CredentialRecord, intent: CredentialIntent, namespace: str) -> Outcome:
        """Plan and apply one namespace, re-planning from fresh reads when the cache was stale."""
        self.stats.namespace_passes += 1
        info = self.namespaces.get(namespace)
        if info is None or info.terminating:
            return Outcome(OutcomeKind.UNTARGETED)
        view = self._view(record, namespace)
        for _ in range(MAX_REPLANS):
            plan = plan_namespace(view, intent)
            try:
                self._apply(plan, record.name)
                return plan.outcome
            except ConflictError as conflict:
                self.stats.conflicts += 1
                log.debug("namespace %s: %s; re-planning from fresh reads", namespace, conflict)
                view = self._refresh_view(record, intent, view)
        raise ConflictError(f"namespace {namespace}: objects kept changing while being written")

    def _apply(self, plan: NamespacePlan, credential: str) -> None:
        for write in plan.writes:
            self.stats.writes += 1
            resource, verb = _WRITE_LABELS[type(write)]
            self.metrics.writes.labels(resource, verb).inc()
            try:
                result = apply_write(self.client, write)
            except ConflictError:
                if isinstance(write, SecretCreate):
                    self._learn_existing(write.namespace, write.name)
                raise
            match write:
                case SecretDelete():
                    self.replicas.forget((write.namespace, write.name))
                case SecretCreate() | SecretUpdate():
                    assert result is not None
                    self.replicas.observe(result)
                    self._foreign.pop((write.namespace, write.name), None)
                case ServiceAccountEdit():
                    assert result is not None
                    self.service_accounts.observe(result)
            log.info(
                "%s %s %s/%s", verb, resource, write.namespace, write.name,
                extra={"credential": credential, "namespace": write.namespace},
            )

    def _learn_existing(self, namespace: str, name: str) -> None:
        """A create hit an existing Secret: find out whose it is."""
        state = read_secret_state(self.client, namespace, name)
        if state is None:
            return
        if state.managed and state.credential:
            self.replicas.observe_state((namespace, name), state)
        else:
            self._foreign[(namespace, name)] = state

    def _refresh_view(self, record: CredentialRecord, intent: CredentialIntent, view: NamespaceView) -> NamespaceView:
        """Re-read what the plan writes to; the caches lag behind the API server."""
        for name in list(view.secrets):
            state = read_secret_state(self.client, view.namespace, name)
            key = (view.namespace, name)
            if state is None:
                self.replicas.forget(key)
                self._foreign.pop(key, None)
            elif state.managed and state.credential:
                self.replicas.observe_state(key, state)
            else:
                self._foreign[key] = state
        for account in view.service_accounts:
            fresh = read_service_account_state(self.client, view.namespace, account.name)
            key = (view.namespace, account.name)
            if fresh is None:
                self.service_accounts.forget(key)
            else:
                self.service_accounts.observe_state(key, fresh)
        return self._view(record, view.namespace)

    def _sync_namespace_and_record(self, credential: str, namespace: str) -> None:
        record = self.credentials.get(credential)
        if record is None or record.spec is None or record.deleting:
            return
        content = self._content.get(credential) or self._resolve(record)
        intent = self._intent(record, content)
        try:
            outcome = self.sync_namespace(record, intent, namespace)
        except KubeError as error:
            self._record(credential, namespace, Outcome(OutcomeKind.FAILED, "WriteFailed", str(error)))
            self.queue.add(("status", credential), delay=self.config.status_debounce_seconds)
            raise
        self._record(credential, namespace, outcome)
        self.queue.add(("status", credential), delay=self.config.status_debounce_seconds)
        self._handle_stuck_pods(record, namespace, outcome)

    def _record(self, credential: str, namespace: str, outcome: Outcome) -> None:
        with self._lock:
            outcomes = self._outcomes.setdefault(credential, {})
            if outcome.kind is OutcomeKind.UNTARGETED:
                outcomes.pop(namespace, None)
            else:
                outcomes[namespace] = outcome

    # -- a whole credential ----------------------------------------------------
    def _sync_credential(self, credential: str) -> None:
        record = self.credentials.get(credential)
        if record is None or record.deleting:
            return
        if record.spec is None:
            self.queue.add(("status", credential))
            return
        self._recheck_foreign(record)
        content = self._resolve(record)  # sources may have changed since the last pass
        self._schedule_verification(record, content)
        touched = self._namespaces_touched(record)
        with self._lock:
            # Forget namespaces that no longer exist or no longer concern us.
            outcomes = self._outcomes.setdefault(credential, {})
            for gone in set(outcomes) - touched:
                del outcomes[gone]
            stuck = self._stuck.setdefault(credential, {})
            for gone in set(stuck) - touched:
                del stuck[gone]
        for namespace in sorted(touched):
            self.queue.add(("ns", credential, namespace))
        self.queue.add(("status", credential), delay=self.config.status_debounce_seconds)

    def _recheck_foreign(self, record: CredentialRecord) -> None:
        """Foreign Secrets are not watched; on each resync, see whether they are still there."""
        for key in [k for k in self._foreign if k[1] == record.secret_name]:
            state = read_secret_state(self.client, *key)
            if state is None:
                self._foreign.pop(key, None)
            else:
                self._foreign[key] = state

    # -- stuck Pods (spec.restartStuckPods) ----------------------------------------
    def _handle_stuck_pods(self, record: CredentialRecord, namespace: str, outcome: Outcome) -> None:
        """Delete the stuck Pods a restart would cure; remember the others for status.

        Pods are listed, not watched: a watch would stream every Pod of the cluster into
        the operator for the sake of the few credentials that opt in. The list is of one
        served namespace's Pending Pods, once per namespace pass (passes come with changes
        and every resync period), and only while the option is on.
        """
        assert record.spec is not None and record.secret_name is not None
        accounts = {sa.name: sa.image_pull_secrets for sa in self.service_accounts.in_group(namespace)}
        wanted = (
            record.spec.restart_stuck_pods
            and outcome.kind in (OutcomeKind.SYNCED, OutcomeKind.STALE)
            # Until a ServiceAccount lists the secret no Pod qualifies: spare the list.
            and any(record.secret_name in names for names in accounts.values())
        )
        if not wanted:
            with self._lock:
                self._stuck.get(record.name, {}).pop(namespace, None)
            return
        for _ in range(MAX_REPLANS):
            pods = list_pending_pods(self.client, namespace)
            with self._lock:
                deleted, owners = self._restarts.recall(namespace, pods)
            plan = plan_stuck_pods(pods, record.secret_name, accounts, deleted, owners)
            with self._lock:
                reported = tuple(stuck.pod.key for stuck in plan.report)
                self._stuck.setdefault(record.name, {})[namespace] = reported
            try:
                for pod in plan.restart:
                    self._restart_pod(record, pod)
                return
            except ConflictError as conflict:
                # Changed or replaced since the list (maybe deleted by another credential's pass).
                log.debug("namespace %s: %s; listing Pods again", namespace, conflict)
        raise ConflictError(f"namespace {namespace}: Pods kept changing while being restarted")

    def _restart_pod(self, record: CredentialRecord, pod: PodFacts) -> None:
        assert pod.owner is not None and record.secret_name is not None
        self.stats.writes += 1
        self.metrics.writes.labels("pods", "delete").inc()
        if not delete_pod(self.client, pod):
            return  # gone already: nothing restarted by us
        with self._lock:
            self._restarts.remember(pod)
            self._restarted[record.name] = self._restarted_pods(record) + 1
        self.metrics.restarted_pods.labels(credential=record.name).inc()
        message = (
            f"deleted Pod {pod.name}: it was created before ServiceAccount {pod.service_account} "
            f"listed the pull secret {record.secret_name} and could not pull its image; "
            f"the {pod.owner.kind} recreates it with the secret"
        )
        log.info(
            "restarted stuck pod %s/%s of %s %s: its ServiceAccount %s now lists %s",
            pod.namespace, pod.name, pod.owner.kind, pod.owner.name, pod.service_account, record.secret_name,
            extra={"credential": record.name, "namespace": pod.namespace},
        )
        owner = {
            "apiVersion": pod.owner.api_version,
            "kind": pod.owner.kind,
            "name": pod.owner.name,
            "uid": pod.owner.uid,
            "namespace": pod.namespace,
        }
        post_event(self.client, owner, "Normal", "RestartedStuckPod", message)

    def _restarted_pods(self, record: CredentialRecord) -> int:
        """Restarts so far: counted here, starting from the status (kept across operator restarts)."""
        return self._restarted.get(record.name, record.status.restarted_pods if record.status else 0)

    # -- registry verification (spec.verify) -------------------------------------
    def _schedule_verification(self, record: CredentialRecord, content: ResolvedContent) -> None:
        """Check now when verification is on and the content is new to it; the rest is periodic."""
        assert record.spec is not None
        if record.spec.verify is None or not record.spec.verify.enabled:
            self._verifications.pop(record.name, None)
            return
        state = self._verifications.get(record.name)
        if content.valid and (state is None or state.content_hash != content.content_hash):
            self.verify_queue.add(("verify", record.name))

    def _verify(self, credential: str) -> None:
        record = self.credentials.get(credential)
        if record is None or record.deleting or record.spec is None:
            return
        verify = record.spec.verify
        content = self._content.get(credential) or self._resolve(record)
        if verify is None or not verify.enabled or content.docker_config is None:
            return
        state = self._verifications.get(credential)
        same_content = state is not None and state.content_hash == content.content_hash
        now = time.monotonic()
        if same_content and now < state.due:  # type: ignore[union-attr]
            # An earlier trigger, perhaps an older content's check that absorbed this one's
            # later check (the queue keeps a key's earliest delayed add only): schedule it again.
            self.verify_queue.add(("verify", credential), delay=state.due - now)  # type: ignore[union-attr]
            return
        checks = tuple(
            check_login(login, utc_now(), self.config.registry_ca_file) for login in logins(content.docker_config)
        )
        failures = (state.failures + 1 if same_content else 1) if unsettled(checks) else 0  # type: ignore[union-attr]
        delay = retry_delay(checks, verify.interval_minutes * 60.0, failures)
        self._verifications[credential] = VerificationState(
            content.content_hash, checks, failures, time.monotonic() + delay
        )
        self.verify_queue.add(("verify", credential), delay=delay)
        self.queue.add(("status", credential), delay=self.config.status_debounce_seconds)

    def _registry_checks(self, record: CredentialRecord, content: ResolvedContent) -> list[RegistryCheck] | None:
        """The checks for status: None when verification is off; [] while the current content is unchecked."""
        assert record.spec is not None
        if record.spec.verify is None or not record.spec.verify.enabled:
            return None
        state = self._verifications.get(record.name)
        if state is None or state.content_hash != content.content_hash:
            return []
        return list(state.checks)

    # -- status ----------------------------------------------------------------
    def _flush_status(self, credential: str) -> None:
        if self.queue.busy(lambda k: k[0] == "ns" and k[1] == credential):
            # Namespace work is still running: write once it has settled.
            self.queue.add(("status", credential), delay=self.config.status_debounce_seconds)
            return
        record = self.credentials.get(credential)
        if record is None or record.deleting:
            return
        status = self.status_for(record)
        self._export_status(credential, status)
        previous = record.status
        if previous is not None and previous.model_dump() == status.model_dump():
            return
        body = status.model_dump(by_alias=True, exclude_none=True)
        result = patch_credential_status(self.client, credential, body)
        self.stats.status_writes += 1
        self.credentials.observe(result)
        self._announce_transitions(result, previous, status)

    def _export_status(self, credential: str, status: RegistryCredentialStatus) -> None:
        with self._lock:
            kinds = [outcome.kind for outcome in self._outcomes.get(credential, {}).values()]
        self.metrics.set_namespace_counts(credential, {
            "matched": status.matched_namespaces,
            "synced": status.synced_namespaces,
            # Uncapped, unlike the lists in status.
            "failed": kinds.count(OutcomeKind.FAILED),
            "conflicted": kinds.count(OutcomeKind.CONFLICT),
        })
        if any(c.type == READY and c.status == "True" for c in status.conditions):
            self.metrics.last_sync.labels(credential=credential).set(time.time())

    def status_for(self, record: CredentialRecord) -> RegistryCredentialStatus:
        """The status the credential should carry now."""
        if record.spec is None:
            return build_status(
                previous=record.status, generation=record.generation, secret_name=record.name,
                content_hash=None, problems=[InvalidSpecError(record.spec_error or "invalid spec")],
                overrides=[], outcomes={}, now=utc_now(),
            )
        content = self._content.get(record.name) or self._resolve(record)
        with self._lock:
            outcomes = dict(self._outcomes.get(record.name, {}))
            stuck_pods = [key for keys in self._stuck.get(record.name, {}).values() for key in keys]
            restarted_pods = self._restarted_pods(record)
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
            registry_checks=self._registry_checks(record, content),
            restarted_pods=restarted_pods,
            stuck_pods=stuck_pods,
        )

    def _announce_transitions(
        self, body: JsonObject, previous: RegistryCredentialStatus | None, current: RegistryCredentialStatus
    ) -> None:
        before = {c.type: c.status for c in (previous.conditions if previous else [])}
        for condition in current.conditions:
            if before.get(condition.type) == condition.status:
                continue
            log.info(
                "%s is now %s: %s", condition.type, condition.status, condition.message,
                extra={"credential": body["metadata"]["name"], "reason": condition.reason},
            )
            if condition.type == READY and condition.status == "True":
                post_event(self.client, credential_reference(body), "Normal", condition.reason, condition.message)
            elif condition.type in (READY, SOURCE_VALID, CREDENTIALS_VALID) and condition.status == "False":
                post_event(self.client, credential_reference(body), "Warning", condition.reason, condition.message)

    # -- deletion --------------------------------------------------------------
    def cleanup(self, body: JsonObject) -> list[str]:
        """Remove every replica and ServiceAccount entry the credential added; returns failures."""
        self.credentials.observe(body)
        record = self.credentials.get(body["metadata"]["name"])
        assert record is not None
        # Without a valid spec, replicas are still known by label, under any name.
        intent = CredentialIntent(
            name=record.name,
            uid=record.uid,
            secret_name=record.secret_name or record.name,
            service_account_globs=(),
        )
        failures = []
        for namespace in sorted(self._cleanup_namespaces(record, intent.secret_name)):
            try:
                self._cleanup_namespace(record, intent, namespace)
            except KubeError as error:
                failures.append(f"{namespace}: {error}")
        if not failures:
            with self._lock:
                self._outcomes.pop(record.name, None)
                self._stuck.pop(record.name, None)
                self._restarted.pop(record.name, None)
            self._content.pop(record.name, None)
            self._verifications.pop(record.name, None)
            self.metrics.forget_credential(record.name)
        return failures

    def _cleanup_namespaces(self, record: CredentialRecord, secret_name: str) -> set[str]:
        touched = set()
        for namespace in self.replicas.groups():
            if any(s.credential == record.name for s in self.replicas.in_group(namespace)):
                touched.add(namespace)
        for namespace in self.service_accounts.groups():
            if any(secret_name in sa.added_by_operator for sa in self.service_accounts.in_group(namespace)):
                touched.add(namespace)
        return touched

    def _cleanup_namespace(self, record: CredentialRecord, intent: CredentialIntent, namespace: str) -> None:
        info = self.namespaces.get(namespace)
        if info is None:
            return
        view = NamespaceView(
            namespace=namespace,
            targeted=False,
            claimed_by=self._holder(record, info, targeted=False) if record.spec else None,
            secrets={s.name: s for s in self.replicas.in_group(namespace) if s.credential == record.name},
            service_accounts=tuple(self.service_accounts.in_group(namespace)),
        )
        for _ in range(MAX_REPLANS):
            try:
                self._apply(plan_namespace(view, intent), record.name)
                return
            except ConflictError:
                view = self._refresh_view(record, intent, view)
        raise ConflictError(f"namespace {namespace}: objects kept changing during cleanup")

    def wait_idle(self, timeout: float) -> bool:
        """Block until no work is queued or running (for tests and the demo)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.queue.busy(lambda k: True) and len(self.queue) == 0:
                return True
            time.sleep(0.05)
        return False

    def known_credentials(self) -> Iterable[str]:
        return self.credentials.snapshot().keys()
