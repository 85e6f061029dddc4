"""Count what the operator's user asked of the API server, from kube-apiserver's audit log."""

from __future__ import annotations

import datetime
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "RequestCount",
    "count_requests",
    "first_write",
    "last_write",
    "now",
    "writes_by_object",
]

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
READ_VERBS = frozenset({"get", "list", "watch"})
# A watch is logged when its response starts and again when it ends; a request that is
# still open when we read has only the first of these.
REQUEST_STAGES = frozenset({"ResponseStarted", "ResponseComplete"})


def now() -> datetime.datetime:
    """The wall clock, as audit events stamp requests."""
    return datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True)
class RequestCount:
    """Requests received in a time window, by "verb resource" (e.g. "patch serviceaccounts")."""

    seconds: float
    by_request: dict[str, int]

    def _total(self, verbs: frozenset[str]) -> int:
        return sum(n for request, n in self.by_request.items() if request.split()[0] in verbs)

    def _only(self, verbs: frozenset[str]) -> dict[str, int]:
        return {r: n for r, n in self.by_request.items() if r.split()[0] in verbs}

    @property
    def writes(self) -> int:
        return self._total(WRITE_VERBS)

    @property
    def write_requests(self) -> dict[str, int]:
        return self._only(WRITE_VERBS)

    @property
    def reads(self) -> int:
        """Gets, lists and watches: what the operator's caches and lookups cost the API server."""
        return self._total(READ_VERBS)

    @property
    def read_requests(self) -> dict[str, int]:
        return self._only(READ_VERBS)


def _requests(
    audit_log: Path, user: str, start: datetime.datetime, end: datetime.datetime | None
) -> Iterator[dict[str, Any]]:
    """Each request by `user` received in [start, end) once, however many stages it logged."""
    seen: set[str] = set()
    with audit_log.open(encoding="utf-8") as lines:
        for line in lines:
            if not line.endswith("\n"):
                break  # the API server is still writing this one
            event = json.loads(line)
            if event["user"].get("username") != user or event["stage"] not in REQUEST_STAGES:
                continue
            if event["auditID"] in seen:
                continue
            received = datetime.datetime.fromisoformat(event["requestReceivedTimestamp"])
            if start <= received and (end is None or received < end):
                seen.add(event["auditID"])
                yield event


def _resource(event: dict[str, Any]) -> str:
    ref = event.get("objectRef", {})
    resource = ref.get("resource") or event["requestURI"]
    subresource = ref.get("subresource")
    return f"{resource}/{subresource}" if subresource else resource


def count_requests(
    audit_log: Path, user: str, start: datetime.datetime, end: datetime.datetime
) -> RequestCount:
    """Requests by `user` that the API server received in [start, end)."""
    counts = Counter(
        f"{event['verb']} {_resource(event)}" for event in _requests(audit_log, user, start, end)
    )
    return RequestCount(
        seconds=(end - start).total_seconds(), by_request=dict(sorted(counts.items()))
    )


def writes_by_object(
    audit_log: Path, user: str, start: datetime.datetime, end: datetime.datetime
) -> dict[tuple[str, str, str], int]:
    """Writes by `user` received in [start, end), by (resource, namespace, name) written."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for event in _requests(audit_log, user, start, end):
        if event["verb"] in WRITE_VERBS:
            ref = event.get("objectRef", {})
            counts[(_resource(event), ref.get("namespace", ""), ref.get("name", ""))] += 1
    return dict(counts)


def last_write(audit_log: Path, user: str, since: datetime.datetime) -> datetime.datetime | None:
    """When the latest write by `user` received since `since` was received; None if none was."""
    times = [
        datetime.datetime.fromisoformat(event["requestReceivedTimestamp"])
        for event in _requests(audit_log, user, since, None)
        if event["verb"] in WRITE_VERBS
    ]
    return max(times, default=None)


def first_write(audit_log: Path, user: str, since: datetime.datetime) -> datetime.datetime | None:
    """When the earliest write by `user` received since `since` was received; None if none was."""
    times = [
        datetime.datetime.fromisoformat(event["requestReceivedTimestamp"])
        for event in _requests(audit_log, user, since, None)
        if event["verb"] in WRITE_VERBS
    ]
    return min(times, default=None)
