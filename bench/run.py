"""One benchmark run: for each size a fresh cluster, the floor first, then the operator.

Per size: create N selected namespaces and wait for their `default` ServiceAccounts;
time the floor (a direct client doing only the needed writes); start the operator
and time fan-out and rotation. At the largest size the steady-state scenarios
follow: new-namespace latency, idle writes, writes across a restart, and peak
memory with and without unrelated Secrets in the cluster.
"""

from __future__ import annotations

import datetime
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench import scenarios, workload
from bench.audit import RequestCount, count_requests, now
from bench.cluster import (
    OPERATOR_NAMESPACE,
    OPERATOR_USER,
    BenchCluster,
    bench_cluster,
    delete_namespaces,
    wait_until,
)
from bench.operator_process import OperatorProcess, OperatorRecord

__all__ = ["BenchRun", "Settings", "SizeResult", "SteadyResult", "machine_facts", "run_benchmark"]

# Status flushes and Events of the last scenario settle before the idle window opens.
QUIET_SECONDS = 5.0
# Long enough for the debounced status write after a round's last namespace.
STATUS_SETTLE_SECONDS = 2.0
# Connections the harness keeps: one per concurrent writer, plus its watches and polls.
HARNESS_EXTRA_CONNECTIONS = 8


@dataclass(frozen=True)
class Settings:
    sizes: tuple[int, ...]
    rounds: int
    concurrency: int
    idle_seconds: float
    settle_seconds: float
    new_namespaces: int
    namespace_rate: float
    unrelated_secrets: int
    stop_grace_seconds: float
    external_kubeconfig: Path | None
    log_dir: Path


@dataclass(frozen=True)
class SizeResult:
    """Seconds, one figure per round."""

    namespaces: int
    setup_seconds: float  # namespaces created and their ServiceAccounts present
    floor_fan_out: list[float] = field(default_factory=list)
    fan_out: list[float] = field(default_factory=list)
    floor_rotation: list[float] = field(default_factory=list)
    rotation: list[float] = field(default_factory=list)
    # What each round's operator asked of the API server (None without an audit log).
    operator_requests: list[RequestCount | None] = field(default_factory=list)


@dataclass(frozen=True)
class SteadyResult:
    namespaces: int
    new_namespaces: scenarios.LatencyFigures
    # None where the API server's audit log cannot be read (an external cluster).
    idle: RequestCount | None
    restart: RequestCount | None
    unrelated_secrets: int
    unrelated_create_seconds: float
    peak_rss_working: (
        int  # the most of any round's process (fan-out, rotation, new namespaces, idle)
    )
    peak_rss_restarted: int  # fresh process over a converged cluster, no unrelated Secrets
    peak_rss_with_unrelated: int  # the same, with the unrelated Secrets present


@dataclass
class BenchRun:
    settings: Settings
    machine: dict[str, object]
    cluster: str = ""
    sizes: list[SizeResult] = field(default_factory=list)
    steady: SteadyResult | None = None
    operators: list[OperatorRecord] = field(default_factory=list)


def machine_facts() -> dict[str, object]:
    model = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")
            ),
            model,
        )
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        # Other work on the machine competes for the same cores.
        "load_average": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "system": platform.platform(),
    }


def run_benchmark(settings: Settings) -> BenchRun:
    run = BenchRun(settings=settings, machine=machine_facts())
    epoch = time.monotonic()
    largest = max(settings.sizes)
    for size in settings.sizes:
        pool = settings.concurrency + HARNESS_EXTRA_CONNECTIONS
        with bench_cluster(settings.external_kubeconfig, pool) as cluster:
            run.cluster = cluster.description
            SizeRun(cluster, settings, size, run, epoch).execute(steady=size == largest)
    return run


class SizeRun:
    """Every scenario at one size, against one cluster."""

    def __init__(
        self, cluster: BenchCluster, settings: Settings, size: int, run: BenchRun, epoch: float
    ) -> None:
        self.cluster = cluster
        self.kube = cluster.admin
        self.settings = settings
        self.size = size
        self.run = run
        self.epoch = epoch
        self.names = [f"bench-{size}-{index:05d}" for index in range(size)]
        self.new_names = [
            f"bench-{size}-new-{index:04d}" for index in range(settings.new_namespaces)
        ]
        self._operators_started = 0
        # The source password's generation: what current replicas carry.
        self.generation = 0
        # Operators of the fan-out and rotation rounds; the last one goes on to new
        # namespaces and the idle window.
        self.round_records: list[OperatorRecord] = []

    def operator(self, label: str) -> OperatorProcess:
        self._operators_started += 1
        record = OperatorRecord(f"N={self.size}: {label}")
        self.run.operators.append(record)
        log_path = self.settings.log_dir / f"operator-n{self.size}-{self._operators_started}.log"
        return OperatorProcess(
            self.cluster.operator_kubeconfig,
            OPERATOR_NAMESPACE,
            self.settings.concurrency,
            log_path,
            record,
            self.epoch,
            self.settings.stop_grace_seconds,
        )

    def count(self, start: datetime.datetime) -> RequestCount | None:
        """The operator's requests since `start`, as the API server logged them."""
        if self.cluster.audit_log is None:
            return None
        return count_requests(self.cluster.audit_log, OPERATOR_USER, start, now())

    def execute(self, steady: bool) -> None:
        kube, concurrency = self.kube, self.settings.concurrency
        namespaces = frozenset(self.names)
        workload.create_source(kube)
        started = time.perf_counter()
        workload.create_namespaces(kube, self.names, concurrency)
        wait_until(
            "default ServiceAccounts", lambda: workload.default_accounts_exist(kube, namespaces)
        )
        result = SizeResult(self.size, setup_seconds=time.perf_counter() - started)
        self.run.sizes.append(result)
        operator = self.measure_rounds(result, namespaces)
        try:
            if not steady:
                self.clean_up_external()
                return
            latency = scenarios.measure_new_namespaces(
                kube,
                self.new_names,
                self.settings.namespace_rate,
                timeout=60 + len(self.new_names) / self.settings.namespace_rate,
                generation=self.generation,
            )
            time.sleep(QUIET_SECONDS)
            idle_start = now()
            time.sleep(self.settings.idle_seconds)
            idle = self.count(idle_start)
            restart_start = now()
        finally:
            operator.stop()
        with self.operator("restarted, converged") as restarted:
            time.sleep(self.settings.settle_seconds)
            restart = self.count(restart_start)
        unrelated_seconds = scenarios.create_unrelated_secrets(
            kube, self.names, self.settings.unrelated_secrets, concurrency
        )
        with self.operator(
            f"restarted, {self.settings.unrelated_secrets} unrelated Secrets"
        ) as loaded:
            time.sleep(self.settings.settle_seconds)
            self.clean_up_external()
        self.run.steady = SteadyResult(
            namespaces=self.size,
            new_namespaces=latency,
            idle=idle,
            restart=restart,
            unrelated_secrets=self.settings.unrelated_secrets,
            unrelated_create_seconds=unrelated_seconds,
            peak_rss_working=max(record.peak for record in self.round_records),
            peak_rss_restarted=restarted.record.peak,
            peak_rss_with_unrelated=loaded.record.peak,
        )

    def measure_rounds(self, result: SizeResult, namespaces: frozenset[str]) -> OperatorProcess:
        """Floor, then operator, `rounds` times; returns the last round's operator, still running.

        Between rounds the credential is deleted, the operator cleans up and exits, and the
        floor's objects are reset, so every round starts from the same cluster.
        """
        operator = self.measure_round(result, namespaces, 1)
        for round_number in range(2, self.settings.rounds + 1):
            try:
                workload.delete_credential(self.kube)
                wait_until("the operator's clean-up", lambda: workload.cleaned_up(self.kube))
            finally:
                operator.stop()
            workload.reset_floor(self.kube, self.names, self.settings.concurrency)
            operator = self.measure_round(result, namespaces, round_number)
        return operator

    def measure_round(
        self, result: SizeResult, namespaces: frozenset[str], round_number: int
    ) -> OperatorProcess:
        """The floor alone, then a new operator process: fan-out and rotation of each."""
        kube, concurrency = self.kube, self.settings.concurrency
        result.floor_fan_out.append(
            scenarios.measure_floor(
                kube, lambda: workload.floor_fan_out(kube, self.names, concurrency)
            )
        )
        result.floor_rotation.append(
            scenarios.measure_floor(
                kube, lambda: workload.floor_rotation(kube, self.names, concurrency)
            )
        )
        round_start = now()
        operator = self.operator(f"round {round_number}").start()
        self.round_records.append(operator.record)
        try:
            result.fan_out.append(scenarios.measure_fan_out(kube, namespaces, self.generation))
            self.generation += 1
            result.rotation.append(scenarios.measure_rotation(kube, namespaces, self.generation))
            time.sleep(STATUS_SETTLE_SECONDS)
            result.operator_requests.append(self.count(round_start))
        except BaseException:
            operator.stop()
            raise
        return operator

    def clean_up_external(self) -> None:
        """On someone else's cluster, remove what the run made; needs the operator running (finalizer)."""
        if self.settings.external_kubeconfig is None:
            return  # the local control plane is thrown away whole
        workload.delete_credential(self.kube)
        wait_until(
            "the RegistryCredential to be deleted",
            lambda: not workload.credential_exists(self.kube),
        )
        workload.delete_source(self.kube)
        # The operator's namespace and identity stay: the next size uses them again.
        delete_namespaces(self.kube, [*self.names, *self.new_names], self.settings.concurrency)
