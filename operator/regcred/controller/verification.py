"""When to log in to a credential's registries (spec.verify), and what the last checks said.

Registry checks wait on the network (up to a deadline per login when a registry hangs),
so they never run on a shared worker: the verify queue only decides that a check is due,
and each check runs in a thread of its own. One check per credential is in flight at a
time, and at most MAX_CHECKS_PER_NAMESPACE per namespace (a tenant's own credentials wait
for each other, nobody else's do). A TenantRegistryCredential's checks connect only
where the platform allows (`OperatorConfig.tenant_verify`, `tenant_verify_allow`), and
its status is told yes, no or refused by policy, never what the network answered.
The states are owned by this scheduler's lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from regcred.config import OperatorConfig
from regcred.controller.clock import utc_now
from regcred.controller.work import Verify, WorkItem
from regcred.kube.projections import CredentialRecord
from regcred.models import RegistryCheck
from regcred.planning.destinations import DestinationPolicy
from regcred.planning.sources import ResolvedContent
from regcred.planning.verification import (
    MAX_CHECKED_LOGINS,
    RegistryLogin,
    as_told_to_tenant,
    logins,
    over_the_limit,
    plain_http_servers,
    retry_delay,
    unsettled,
)
from regcred.registry import Egress, check_login
from regcred.workqueue import WorkQueue

__all__ = ["MAX_CHECKS_PER_NAMESPACE", "VerificationScheduler"]

log = logging.getLogger(__name__)

# Checks in flight at once for the credentials of one namespace (cluster-scoped ones share "").
MAX_CHECKS_PER_NAMESPACE = 4
TENANT_CHECKS_OFF = "not checked: registry checks of TenantRegistryCredentials are off in this cluster"


@dataclass(frozen=True)
class _Checked:
    """The last checks of one credential, for which content, and when the next is due."""

    content_hash: str | None
    checks: tuple[RegistryCheck, ...]  # as status shows them
    failures: int  # consecutive checks that could not reach a verdict
    due: float  # monotonic


@dataclass(frozen=True)
class _Run:
    """One credential's check, in flight: what it checks and what it knew before."""

    key: str
    namespace: str
    content_hash: str | None
    tenant: bool
    interval: float
    previous_failures: int


def _enabled(record: CredentialRecord) -> bool:
    return record.usable and record.spec is not None and record.spec.verify is not None and record.spec.verify.enabled


class VerificationScheduler:
    def __init__(self, queue: WorkQueue, config: OperatorConfig, on_checked: Callable[[str], None]) -> None:
        self.queue = queue
        self._ca_file = config.registry_ca_file
        self._tenant_checks = config.tenant_verify
        self._tenant_destinations = DestinationPolicy.allowing(config.tenant_verify_allow)
        self._on_checked = on_checked
        self._lock = threading.Lock()
        self._states: dict[str, _Checked] = {}
        # Checks in flight, until their threads end (forgotten ones too: they still hold a place).
        self._running: dict[str, _Run] = {}
        self._forgotten: set[str] = set()  # whose running check's result is to be dropped
        # Credentials (and their namespaces) that asked for a check while theirs or their namespace's were busy.
        self._waiting: dict[str, str] = {}

    def schedule(self, record: CredentialRecord, content: ResolvedContent) -> None:
        """Check now when verification is on and the content is new to it; the rest is periodic."""
        if not _enabled(record):
            self.forget(record.key)
            return
        with self._lock:
            state = self._states.get(record.key)
        if content.valid and (state is None or state.content_hash != content.content_hash):
            self._add(Verify(record.key))

    def _add(self, item: WorkItem, delay: float = 0.0) -> None:
        self.queue.add(item, delay=delay)

    def verify(self, record: CredentialRecord, content: ResolvedContent) -> None:
        """Start the checks that are due for the credential's current content; never waits on the network."""
        if not _enabled(record) or content.docker_config is None:
            return
        assert record.spec is not None and record.spec.verify is not None
        namespace = record.namespace or ""
        with self._lock:
            state = self._states.get(record.key)
            same_content = state is not None and state.content_hash == content.content_hash
            now = time.monotonic()
            if state is not None and same_content and now < state.due:
                # An earlier trigger, perhaps an older content's check that absorbed this one's
                # later check (the queue keeps a key's earliest delayed add only): schedule it again.
                self._add(Verify(record.key), delay=state.due - now)
                return
            busy = sum(1 for run in self._running.values() if run.namespace == namespace)
            if record.key in self._running or busy >= MAX_CHECKS_PER_NAMESPACE:
                self._waiting[record.key] = namespace  # asked again when a check of the namespace ends
                return
            run = _Run(
                key=record.key,
                namespace=namespace,
                content_hash=content.content_hash,
                tenant=record.tenant_owned,
                interval=record.spec.verify.interval_minutes * 60.0,
                previous_failures=state.failures if state is not None and same_content else 0,
            )
            self._running[record.key] = run
        plain_http = plain_http_servers(record.spec)
        found = logins(content.docker_config)
        if run.tenant and not self._tenant_checks:
            self._finish(run, tuple(self._tenant_checks_off(login) for login in found))
            return
        threading.Thread(
            target=self._check, args=(run, found, plain_http), name=f"verify {record.key}", daemon=True
        ).start()

    def _tenant_checks_off(self, login: RegistryLogin) -> RegistryCheck:
        return RegistryCheck(server=login.server, result="RefusedByPolicy", message=TENANT_CHECKS_OFF, checked_at=utc_now())

    def _check(self, run: _Run, found: list[RegistryLogin], plain_http: frozenset[str]) -> None:
        destinations = self._tenant_destinations if run.tenant else None
        try:
            checks = tuple(
                check_login(login, utc_now(), self._ca_file, Egress(destinations, login.server in plain_http))
                if number < MAX_CHECKED_LOGINS else over_the_limit(login, utc_now())
                for number, login in enumerate(found)
            )
        except Exception as error:  # a bug must not keep the credential's place forever
            log.error("registry check of %s failed in the operator: %s", run.key, type(error).__name__)
            message = "the check failed in the operator; its log says more"
            checks = tuple(
                RegistryCheck(server=login.server, result="Error", message=message, checked_at=utc_now()) for login in found
            )
        self._finish(run, checks)

    def _finish(self, run: _Run, checks: tuple[RegistryCheck, ...]) -> None:
        for check in checks:
            # The full answer for the platform's logs (messages never hold secret material).
            log.debug("registry check of %s: %s %s: %s", run.key, check.server, check.result, check.message)
        failures = run.previous_failures + 1 if unsettled(checks) else 0
        delay = retry_delay(checks, run.interval, failures)
        shown = tuple(as_told_to_tenant(check) for check in checks) if run.tenant else checks
        with self._lock:
            del self._running[run.key]
            stale = run.key in self._forgotten  # the credential is gone or stopped verifying meanwhile
            self._forgotten.discard(run.key)
            if not stale:
                self._states[run.key] = _Checked(run.content_hash, shown, failures, time.monotonic() + delay)
            waiting = [key for key, namespace in self._waiting.items() if namespace == run.namespace]
            for key in waiting:
                del self._waiting[key]
        for key in waiting:
            self._add(Verify(key))
        if not stale:
            self._add(Verify(run.key), delay=delay)
            self._on_checked(run.key)

    def checks_for(self, record: CredentialRecord, content: ResolvedContent | None) -> list[RegistryCheck] | None:
        """The checks for status: None when verification is off; [] while the current content is unchecked."""
        if not _enabled(record):
            return None
        with self._lock:
            state = self._states.get(record.key)
        if state is None or content is None or state.content_hash != content.content_hash:
            return []
        return list(state.checks)

    def forget(self, credential: str) -> None:
        with self._lock:
            self._states.pop(credential, None)
            self._waiting.pop(credential, None)
            if credential in self._running:
                self._forgotten.add(credential)
