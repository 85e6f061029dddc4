"""The work the controller queues: one frozen type per job, and the retry backoff per item.

Every trigger (a watch event, a kopf handler, a timer that is a delayed item) becomes
one of these on a work queue. Items compare by value, so the queue coalesces repeats.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import assert_never

__all__ = [
    "CleanUp",
    "FindOrphans",
    "RemoveOrphan",
    "RetryBackoff",
    "SyncCredential",
    "SyncNamespace",
    "Verify",
    "WorkItem",
    "WriteStatus",
    "kind_of",
    "log_fields",
]


@dataclass(frozen=True)
class SyncCredential:
    """Resolve the credential's content and fan out one SyncNamespace per touched namespace."""

    credential: str


@dataclass(frozen=True)
class SyncNamespace:
    """Plan and apply one namespace for one credential."""

    credential: str
    namespace: str


@dataclass(frozen=True)
class WriteStatus:
    """Write the credential's status once its namespace work has settled."""

    credential: str


@dataclass(frozen=True)
class Verify:
    """Log in to the credential's registries (on the verification queue)."""

    credential: str


@dataclass(frozen=True)
class CleanUp:
    """Remove everything the credential added, then report to whoever holds its finalizer."""

    credential: str


@dataclass(frozen=True)
class FindOrphans:
    """Look for replicas and records that name credentials not in the caches (at start, then
    every resync period): a credential deleted without its cleanup leaves them."""


@dataclass(frozen=True)
class RemoveOrphan:
    """Remove the replicas and records of a credential that no longer exists."""

    credential: str


WorkItem = SyncCredential | SyncNamespace | WriteStatus | Verify | CleanUp | FindOrphans | RemoveOrphan


def kind_of(item: WorkItem) -> str:
    """The item's kind as the `kind` label of the reconcile metrics."""
    match item:
        case SyncCredential():
            return "full"
        case SyncNamespace():
            return "ns"
        case WriteStatus():
            return "status"
        case Verify():
            return "verify"
        case CleanUp() | RemoveOrphan():
            return "cleanup"
        case FindOrphans():
            return "orphans"
        case _:
            assert_never(item)


def log_fields(item: WorkItem) -> dict[str, str]:
    """The credential and namespace of an item, as structured log fields."""
    if isinstance(item, FindOrphans):
        return {}
    fields = {"credential": item.credential}
    if isinstance(item, SyncNamespace):
        fields["namespace"] = item.namespace
    return fields


class RetryBackoff:
    """Per-item exponential backoff with jitter (client-go's per-item failure rate limiter).

    The one retry rule of the worker loop: 0.5 s doubling to `ceiling`, reset by a success.
    Owned by its lock: workers of both queues call it.
    """

    def __init__(self, base: float = 0.5, ceiling: float = 60.0) -> None:
        self._base = base
        self._ceiling = ceiling
        self._failures: dict[WorkItem, int] = {}
        self._lock = threading.Lock()

    def next_delay(self, item: WorkItem) -> tuple[int, float]:
        """Count one more failure of `item`; return the attempt number and the delay before it."""
        with self._lock:
            attempt = self._failures.get(item, 0) + 1
            self._failures[item] = attempt
        delay = min(self._ceiling, self._base * 2 ** min(attempt - 1, 16))
        return attempt, delay * (1 + random.random() / 4)

    def forget(self, item: WorkItem) -> None:
        with self._lock:
            self._failures.pop(item, None)
