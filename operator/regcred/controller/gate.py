"""Keeps a credential's cleanup and its other work apart, and reports cleanup to its waiter.

Work for a credential `enter`s the gate (refused once cleanup has closed it for that
uid) and `leave`s it when done. Cleanup closes the gate first, then runs only when no
work of the credential is in flight, so once it reports done no write for that
credential can follow. Everything here is owned by one lock.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

__all__ = ["CredentialGate"]


@dataclass
class _CleanupRequest:
    uid: str
    done: threading.Event
    failures: list[str]


class CredentialGate:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight: Counter[str] = Counter()
        self._closed: dict[str, str] = {}  # credential name -> uid being or already cleaned up
        self._requests: dict[str, _CleanupRequest] = {}

    def enter(self, credential: str, uid: str) -> bool:
        """Admit one piece of work for the credential, unless its cleanup has begun."""
        with self._lock:
            if self._closed.get(credential) == uid:
                return False
            self._in_flight[credential] += 1
            return True

    def leave(self, credential: str) -> None:
        with self._lock:
            self._in_flight[credential] -= 1
            if self._in_flight[credential] <= 0:
                del self._in_flight[credential]

    def close(self, credential: str, uid: str) -> bool:
        """Refuse new work for this uid; True when no admitted work is still running."""
        with self._lock:
            self._closed[credential] = uid
            return self._in_flight[credential] == 0

    def request_cleanup(self, credential: str, uid: str) -> tuple[threading.Event, bool]:
        """The event set when a cleanup pass has ended, and whether a new pass is needed.

        A pass still running for this uid is waited for, not restarted: its waiter may
        have timed out and asked again. A pass that ended (with failures) is run again.
        """
        with self._lock:
            request = self._requests.get(credential)
            if request is not None and request.uid == uid and not request.done.is_set():
                return request.done, False
            request = _CleanupRequest(uid, threading.Event(), [])
            self._requests[credential] = request
            return request.done, True

    def requested_uid(self, credential: str) -> str | None:
        with self._lock:
            request = self._requests.get(credential)
            return request.uid if request is not None else None

    def report_cleanup(self, credential: str, uid: str, failures: list[str]) -> None:
        with self._lock:
            request = self._requests.get(credential)
            if request is None or request.uid != uid:
                return
            request.failures = list(failures)
            request.done.set()

    def cleanup_failures(self, credential: str) -> list[str]:
        with self._lock:
            request = self._requests.get(credential)
            return list(request.failures) if request is not None else []

    def forget(self, credential: str, uid: str) -> None:
        """The credential with this uid is gone from the cluster: nothing left to keep apart."""
        with self._lock:
            if self._closed.get(credential) == uid:
                del self._closed[credential]
            request = self._requests.get(credential)
            if request is not None and request.uid == uid:
                del self._requests[credential]
