"""The measurements: each returns plain figures and leaves judging them to the report."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Self, TypeVar

from bench import many_credentials, workload
from bench.cluster import run_concurrently, secret_body
from regcred.errors import KubeError
from regcred.kube.client import JsonObject, KubeClient
from regcred.planning.plan import CREDENTIAL_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE

__all__ = [
    "LatencyFigures",
    "create_tenant_secrets",
    "create_unrelated_secrets",
    "measure_cold_fan_out",
    "measure_convergence",
    "measure_fan_out",
    "measure_floor",
    "measure_many_fan_out",
    "measure_new_namespaces",
    "measure_one_source_change",
    "measure_rotation",
    "percentile",
]

CHECK_SECONDS = 0.1
CONVERGE_TIMEOUT_SECONDS = 900.0
WATCH_SECONDS = 1800

# Milestones a namespace reaches, stamped from watch events as they arrive.
ACCOUNT_CREATED = "ServiceAccount created"
ACCOUNT_PATCHED = "ServiceAccount patched"
REPLICA_CURRENT = "replica current"

T = TypeVar("T")


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

    def start(self) -> None:
        # Watch from "now": later objects arrive as events, earlier ones are not ours.
        page = self._kube.request("GET", self._path, query={**self._query, "limit": 1})
        self._query = {
            **self._query,
            "resourceVersion": page["metadata"]["resourceVersion"],
            "timeoutSeconds": str(WATCH_SECONDS),
        }
        self._thread.start()

    def _opened(self, abort: Callable[[], None]) -> None:
        self._abort = abort

    def _run(self) -> None:
        try:
            events = self._kube.watch(
                self._path, self._query, WATCH_SECONDS + 30, on_open=self._opened
            )
            for event in events:
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
            try:
                self._abort()
            except (ValueError, RuntimeError, OSError):
                pass  # the watch had already ended and released its connection
        self._thread.join(10)


class Milestones:
    """When each namespace's `default` ServiceAccount appeared and listed its replica, and when
    the replica got the expected content: two watches, pushed to us as the operator writes.

    `wanted` says, per namespace, which replica (name and content hash) it should hold;
    `replicas_selector` picks the Secrets to watch: replicas and the floor's stand-ins.

    Watching instead of polling keeps the observer's cost off the API server: a list of a
    thousand Secrets and ServiceAccounts every 0.1 s takes a large share of two cores, which
    would be charged to the operator and not to the floor. The floor is timed under the same
    two watches (`measure_floor`), so both pay the observer alike.
    """

    def __init__(
        self,
        kube: KubeClient,
        wanted: workload.Wanted,
        replicas_selector: str = workload.REPLICAS_SELECTOR,
    ) -> None:
        def patched(account: JsonObject) -> bool:
            return workload.lists_secret(account, wanted(account["metadata"]["namespace"]))

        def current(secret: JsonObject) -> bool:
            return workload.is_current_replica(secret, wanted(secret["metadata"]["namespace"]))

        self._accounts = FirstSeen(
            kube,
            "/api/v1/serviceaccounts",
            {"fieldSelector": "metadata.name=default"},
            {ACCOUNT_CREATED: lambda account: True, ACCOUNT_PATCHED: patched},
        )
        self._replicas = FirstSeen(
            kube,
            "/api/v1/secrets",
            {"labelSelector": replicas_selector},
            {REPLICA_CURRENT: current},
        )
        self._times = {**self._accounts.times, **self._replicas.times}

    def __enter__(self) -> Self:
        self._accounts.start()
        self._replicas.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._accounts.stop()
        self._replicas.stop()
        for watcher in (self._accounts, self._replicas):
            if watcher.error is not None:
                raise watcher.error

    def reached(self, namespace: str, *milestones: str) -> float | None:
        """When `namespace` had reached every one of `milestones`, or None if it has not yet."""
        times = [self._times[milestone].get(namespace) for milestone in milestones]
        return None if None in times else max(times)  # type: ignore[type-var]

    def wait(self, namespaces: Iterable[str], *milestones: str, timeout: float) -> float | None:
        """When the last of `namespaces` reached `milestones`; None if some had not by `timeout`."""
        deadline = time.perf_counter() + timeout
        while True:
            reached = [self.reached(namespace, *milestones) for namespace in namespaces]
            if None not in reached:
                return max(reached, default=0.0)  # type: ignore[type-var]
            if time.perf_counter() > deadline:
                return None
            time.sleep(CHECK_SECONDS)


def _converged(what: str, started: float, finished: float | None, confirmed: bool) -> float:
    if finished is None:
        raise TimeoutError(f"{what}: not converged after {CONVERGE_TIMEOUT_SECONDS:.0f} s")
    if not confirmed:
        raise AssertionError(f"{what}: the watches saw convergence but a fresh list does not")
    return finished - started


def _nothing(namespace: str) -> None:
    return None


def measure_floor(
    kube: KubeClient,
    writes: Callable[[], T],
    replicas_selector: str = workload.REPLICAS_SELECTOR,
) -> T:
    """Run the floor's `writes` (which time themselves) under the same two watches that
    observe the operator."""
    with Milestones(kube, _nothing, replicas_selector):
        return writes()


def measure_convergence(
    kube: KubeClient,
    what: str,
    act: Callable[[], object],
    namespaces: Iterable[str],
    wanted: workload.Wanted,
    replicas_selector: str = workload.REPLICAS_SELECTOR,
    accounts: bool = True,
) -> float:
    """Seconds from `act` until every one of `namespaces` holds its wanted replica and, with
    `accounts`, its `default` ServiceAccount lists it; confirmed by one list of each."""
    namespaces = list(namespaces)
    milestones = (ACCOUNT_PATCHED, REPLICA_CURRENT) if accounts else (REPLICA_CURRENT,)
    with Milestones(kube, wanted, replicas_selector) as observed:
        started = time.perf_counter()
        act()
        finished = observed.wait(namespaces, *milestones, timeout=CONVERGE_TIMEOUT_SECONDS)
    confirmed = workload.replicas_current(kube, namespaces, wanted, replicas_selector) and (
        not accounts or workload.accounts_patched(kube, namespaces, wanted)
    )
    return _converged(what, started, finished, confirmed)


def measure_fan_out(kube: KubeClient, namespaces: frozenset[str], generation: int) -> float:
    """Apply the credential; seconds until every replica is current and every ServiceAccount lists it."""
    _, content_hash = workload.expected_content(generation)
    return measure_convergence(
        kube,
        "fan-out",
        lambda: workload.apply_credential(kube),
        namespaces,
        workload.everywhere(content_hash),
    )


def measure_cold_fan_out(
    kube: KubeClient, namespaces: frozenset[str], generation: int, launch: Callable[[], object]
) -> float:
    """With the credential already in place, `launch` the operator; seconds from its process
    start until every replica is current and every ServiceAccount lists it."""
    _, content_hash = workload.expected_content(generation)
    return measure_convergence(
        kube, "cold fan-out", launch, namespaces, workload.everywhere(content_hash)
    )


def measure_rotation(kube: KubeClient, namespaces: frozenset[str], generation: int) -> float:
    """Change the source password; seconds until every replica carries the new content."""
    _, content_hash = workload.expected_content(generation)
    return measure_convergence(
        kube,
        "rotation",
        lambda: workload.rotate_source(kube, generation),
        namespaces,
        workload.everywhere(content_hash),
        accounts=False,
    )


# -- many credentials ---------------------------------------------------------------
def measure_many_fan_out(
    kube: KubeClient, fleet: many_credentials.Fleet, concurrency: int
) -> float:
    """Apply every credential (`concurrency` at a time); seconds until every namespace holds its
    credential's replica and its `default` ServiceAccount lists it."""
    return measure_convergence(
        kube,
        "many credentials: fan-out",
        lambda: fleet.apply_credentials(kube, concurrency),
        fleet.namespaces,
        fleet.wanted({}).get,
        many_credentials.REPLICAS_SELECTOR,
    )


def measure_one_source_change(
    kube: KubeClient, fleet: many_credentials.Fleet, index: int, generation: int
) -> float:
    """Change credential `index`'s source password; seconds until its replicas carry it."""
    return measure_convergence(
        kube,
        "one source changes",
        lambda: fleet.change_source(kube, index, generation),
        fleet.served(index),
        fleet.wanted({index: generation}).get,
        many_credentials.REPLICAS_SELECTOR,
        accounts=False,
    )


# -- new namespaces ---------------------------------------------------------------
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
    created: dict[str, float] = {}
    with Milestones(kube, workload.everywhere(content_hash)) as milestones:
        started = time.perf_counter()
        for index, name in enumerate(names):
            time.sleep(max(0.0, started + index / rate - time.perf_counter()))
            # Stamped before the request: the controller manager may answer before we do.
            created[name] = time.perf_counter()
            workload.create_namespaces(kube, [name], concurrency=1)
        milestones.wait(names, ACCOUNT_PATCHED, REPLICA_CURRENT, timeout=timeout)
    operator, floor = [], []
    for name, at in created.items():
        served = milestones.reached(name, ACCOUNT_PATCHED, REPLICA_CURRENT)
        if served is not None:
            operator.append(served - at)
        account = milestones.reached(name, ACCOUNT_CREATED)
        if account is not None:
            floor.append(account - at)
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


# A Secret's data may be up to 1 MiB; a little less leaves room for the rest of the request.
TENANT_SECRET_BYTES = 900 * 1024


def create_tenant_secrets(kube: KubeClient, namespace: str, total_bytes: int, concurrency: int) -> float:
    """What a namespace editor may create: large Secrets, half of them labelled like replicas
    (of a credential that does not exist), half plain. Seconds taken."""
    count = max(2, -(-total_bytes // TENANT_SECRET_BYTES))
    size = total_bytes // count
    looks_like_a_replica = {MANAGED_BY_LABEL: MANAGED_BY_VALUE, CREDENTIAL_LABEL: "nobody"}

    def create(index: int) -> None:
        payload = index.to_bytes(4, "big") * (size // 4)
        labels = looks_like_a_replica if index % 2 else None
        body = secret_body(f"tenant-{index:04d}", {"blob": payload}, labels=labels)
        kube.request("POST", f"/api/v1/namespaces/{namespace}/secrets", body=body)

    return run_concurrently(create, range(count), concurrency)
