"""Count what the operator's user asked of the API server, from kube-apiserver's audit log."""

from __future__ import annotations

import datetime
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RequestCount", "count_requests", "now"]

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


def now() -> datetime.datetime:
    """The wall clock, as audit events stamp requests."""
    return datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True)
class RequestCount:
    """Requests received in a time window, by "verb resource" (e.g. "patch serviceaccounts")."""

    seconds: float
    by_request: dict[str, int]

    @property
    def writes(self) -> int:
        return sum(n for request, n in self.by_request.items() if request.split()[0] in WRITE_VERBS)

    @property
    def write_requests(self) -> dict[str, int]:
        return {
            request: n
            for request, n in self.by_request.items()
            if request.split()[0] in WRITE_VERBS
        }


def count_requests(
    audit_log: Path, user: str, start: datetime.datetime, end: datetime.datetime
) -> RequestCount:
    """Requests by `user` that the API server received in [start, end)."""
    counts: Counter[str] = Counter()
    with audit_log.open(encoding="utf-8") as lines:
        for line in lines:
            event = json.loads(line)
            if event["user"].get("username") != user or event["stage"] != "ResponseComplete":
                continue
            received = datetime.datetime.fromisoformat(event["requestReceivedTimestamp"])
            if start <= received < end:
                resource = event.get("objectRef", {}).get("resource") or event["requestURI"]
                subresource = event.get("objectRef", {}).get("subresource")
                counts[f"{event['verb']} {resource}{'/' + subresource if subresource else ''}"] += 1
    return RequestCount(
        seconds=(end - start).total_seconds(), by_request=dict(sorted(counts.items()))
    )
