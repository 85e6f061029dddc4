"""The measurements: each returns plain figures and leaves judging them to the report."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench import workload
from bench.cluster import run_concurrently, secret_body
from regcred.errors import KubeError
from regcred.kube.client import JsonObject, KubeClient
from regcred.planning.plan import CREDENTIAL_LABEL

__all__ = [
    "LatencyFigures",
    "create_unrelated_secrets",
    "measure_fan_out",
    "measure_new_namespaces",
    "measure_rotation",
    "percentile",
]

POLL_SECONDS = 0.1
CONVERGE_TIMEOUT_SECONDS = 900.0
WATCH_SECONDS = 1800


def _time_until(what: str, started: float, converged: Callable[[], bool]) -> float:
    """Seconds from `started` until `converged()` (checked back to back, `POLL_SECONDS` apart) holds.

    The figure is taken when the successful check returns, so it errs against the operator
    by at most one poll.
    """
    while not converged():
        if time.perf_counter() - started > CONVERGE_TIMEOUT_SECONDS:
            raise TimeoutError(f"{what}: not converged after {CONVERGE_TIMEOUT_SECONDS:.0f} s")
        time.sleep(POLL_SECONDS)
    return time.perf_counter() - started


def measure_fan_out(kube: KubeClient, namespaces: frozenset[str]) -> float:
    """Apply the credential; seconds until every replica is current and every ServiceAccount lists it."""
    _, content_hash = workload.expected_content(0)
    started = time.perf_counter()
    workload.apply_credential(kube)
    return _time_until(
        "fan-out",
        started,
        lambda: (
            workload.replicas_current(kube, namespaces, content_hash)
            and workload.accounts_patched(kube, namespaces)
        ),
    )


def measure_rotation(kube: KubeClient, namespaces: frozenset[str], generation: int) -> float:
    """Change the source password; seconds until every replica carries the new content."""
    _, content_hash = workload.expected_content(generation)
    started = time.perf_counter()
    workload.rotate_source(kube, generation)
    return _time_until(
        "rotation", started, lambda: workload.replicas_current(kube, namespaces, content_hash)
    )


# -- new namespaces ---------------------------------------------------------------
class FirstSeen:
    """Watches a collection and stamps, per namespace, when an object first passes each test."""

    def __init__(
        self,
        kube: KubeClient,
        path: str,
        query: dict[str, str],
        tests: dict[str, Callable[[JsonObject], bool]],
    ) -> None:
        self._kube = kube
        self._path = path
        self._query = query
        self._tests = tests
        self.times: dict[str, dict[str, float]] = {name: {} for name in tests}
        self._abort: Callable[[], None] | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"watch {path}")
        self.error: BaseException | None = None

    def start(self) -> FirstSeen:
        # Watch from "now": later objects arrive as events, earlier ones are not ours.
        version = self._kube.request("GET", self._path, query={**self._query, "limit": 1})[
            "metadata"
        ]["resourceVersion"]
        self._query = {
            **self._query,
            "resourceVersion": version,
            "timeoutSeconds": str(WATCH_SECONDS),
        }
        self._thread.start()
        return self

    def _opened(self, abort: Callable[[], None]) -> None:
        self._abort = abort

    def _run(self) -> None:
        try:
            for event in self._kube.watch(
                self._path, self._query, WATCH_SECONDS + 30, on_open=self._opened
            ):
                seen = time.perf_counter()
                obj = event["object"]
                if event["type"] not in ("ADDED", "MODIFIED"):
                    continue
                namespace = obj["metadata"]["namespace"]
                for name, test in self._tests.items():
                    if test(obj):
                        self.times[name].setdefault(namespace, seen)
        except KubeError as error:
            if not self._stopping.is_set():
                self.error = error

    def stop(self) -> None:
        self._stopping.set()
        if self._abort is not None:
            self._abort()
        self._thread.join(10)


@dataclass(frozen=True)
class LatencyFigures:
    """Per new namespace, seconds from its creation to each milestone."""

    rate_per_second: float
    operator: list[float]  # replica present and `default` ServiceAccount patched
    controller_manager: list[float]  # `default` ServiceAccount created: the floor
    missing: int  # namespaces that did not converge in time


def measure_new_namespaces(
    kube: KubeClient, names: list[str], rate: float, timeout: float, generation: int
) -> LatencyFigures:
    """Create namespaces at a steady rate with the credential in place; time each one's milestones.

    `generation` is the source password's current generation (what replicas must carry).
    """
    _, content_hash = workload.expected_content(generation)
    accounts = FirstSeen(
        kube,
        "/api/v1/serviceaccounts",
        {"fieldSelector": "metadata.name=default"},
        {"created": lambda account: True, "patched": workload.has_replica_entry},
    ).start()
    replicas = FirstSeen(
        kube,
        "/api/v1/secrets",
        {"labelSelector": f"{CREDENTIAL_LABEL}={workload.CREDENTIAL}"},
        {"current": lambda secret: workload.is_current_replica(secret, content_hash)},
    ).start()
    created: dict[str, float] = {}
    try:
        started = time.perf_counter()
        for index, name in enumerate(names):
            time.sleep(max(0.0, started + index / rate - time.perf_counter()))
            # Stamped before the request: the controller manager may answer before we do.
            created[name] = time.perf_counter()
            workload.create_namespaces(kube, [name], concurrency=1)

        def done() -> bool:
            return set(names) <= accounts.times["patched"].keys() & replicas.times["current"].keys()

        deadline = time.perf_counter() + timeout
        while not done() and time.perf_counter() < deadline:
            time.sleep(POLL_SECONDS)
    finally:
        accounts.stop()
        replicas.stop()
    for watcher in (accounts, replicas):
        if watcher.error is not None:
            raise watcher.error
    operator, floor = [], []
    for name, at in created.items():
        patched, current = accounts.times["patched"].get(name), replicas.times["current"].get(name)
        if patched is not None and current is not None:
            operator.append(max(patched, current) - at)
        if name in accounts.times["created"]:
            floor.append(accounts.times["created"][name] - at)
    return LatencyFigures(rate, sorted(operator), sorted(floor), missing=len(names) - len(operator))


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    return sorted_values[max(0, math.ceil(fraction * len(sorted_values)) - 1)]


# -- unrelated load ---------------------------------------------------------------
def create_unrelated_secrets(
    kube: KubeClient, namespaces: list[str], count: int, concurrency: int
) -> float:
    """Small Opaque Secrets the operator has no business with, spread over the namespaces."""

    def create(index: int) -> None:
        namespace = namespaces[index % len(namespaces)]
        body = secret_body(
            f"unrelated-{index:06d}", {"value": f"unrelated value {index:06d}".encode()}
        )
        kube.request("POST", f"/api/v1/namespaces/{namespace}/secrets", body=body)

    return run_concurrently(create, range(count), concurrency)
