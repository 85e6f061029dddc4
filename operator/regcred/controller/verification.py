"""When to log in to a credential's registries (spec.verify), and what the last checks said.

Registry checks wait on the network (seconds per request when a registry hangs), so
they run from their own queue: a slow registry never delays replication. The states
are owned by this scheduler's lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from regcred.controller.clock import utc_now
from regcred.controller.work import Verify, WorkItem
from regcred.kube.resources import CredentialRecord
from regcred.models import RegistryCheck
from regcred.planning.sources import ResolvedContent
from regcred.planning.verification import logins, retry_delay, unsettled
from regcred.registry import check_login
from regcred.workqueue import WorkQueue

__all__ = ["VerificationScheduler"]


@dataclass(frozen=True)
class _Checked:
    """The last checks of one credential, for which content, and when the next is due."""

    content_hash: str | None
    checks: tuple[RegistryCheck, ...]
    failures: int  # consecutive checks that could not reach a verdict
    due: float  # monotonic


def _enabled(record: CredentialRecord) -> bool:
    return record.usable and record.spec is not None and record.spec.verify is not None and record.spec.verify.enabled


class VerificationScheduler:
    def __init__(self, queue: WorkQueue, ca_file: str | None, on_checked: Callable[[str], None]) -> None:
        self.queue = queue
        self._ca_file = ca_file
        self._on_checked = on_checked
        self._lock = threading.Lock()
        self._states: dict[str, _Checked] = {}

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
        """Run the checks that are due for the credential's current content."""
        if not _enabled(record) or content.docker_config is None:
            return
        assert record.spec is not None and record.spec.verify is not None
        with self._lock:
            state = self._states.get(record.key)
        same_content = state is not None and state.content_hash == content.content_hash
        now = time.monotonic()
        if state is not None and same_content and now < state.due:
            # An earlier trigger, perhaps an older content's check that absorbed this one's
            # later check (the queue keeps a key's earliest delayed add only): schedule it again.
            self._add(Verify(record.key), delay=state.due - now)
            return
        checks = tuple(check_login(login, utc_now(), self._ca_file) for login in logins(content.docker_config))
        previous_failures = state.failures if state is not None and same_content else 0
        failures = previous_failures + 1 if unsettled(checks) else 0
        delay = retry_delay(checks, record.spec.verify.interval_minutes * 60.0, failures)
        with self._lock:
            self._states[record.key] = _Checked(content.content_hash, checks, failures, time.monotonic() + delay)
        self._add(Verify(record.key), delay=delay)
        self._on_checked(record.key)

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
