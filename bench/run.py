"""One benchmark run: for each size a fresh cluster, the floors first, then the operator.

Per size: create N selected namespaces and wait for their `default` ServiceAccounts;
time the floors (a Python client and a Go one doing only the needed writes, the Go one
at each concurrency of a sweep); start the operator and time fan-out and rotation, then
a cold fan-out (the credential present before the operator process starts). At the
largest size the steady-state scenarios follow: new-namespace latency and writes, idle
writes, writes across a restart, peak memory with and without unrelated Secrets in the
cluster, and a cold start among those Secrets. Then, on a cluster of its own, many
credentials: fan-out of C credentials over N namespaces and the change of one
credential's source, each with the operator's requests counted.
"""

from __future__ import annotations

import datetime
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench import many_credentials, request_loop, scenarios, workload
from bench.audit import (
    RequestCount,
    count_requests,
    first_write,
    last_write,
    now,
    writes_by_object,
)
from bench.cluster import (
    OPERATOR_NAMESPACE,
    OPERATOR_USER,
    BenchCluster,
    bench_cluster,
    delete_namespaces,
    wait_until,
)
from bench.go_floor import Build, GoFloorResult, ensure_binary, run_plan
from bench.operator_process import OperatorProcess, OperatorRecord

__all__ = [
    "BenchRun",
    "ColdStart",
    "ManyCredentialsResult",
    "OperatorWindow",
    "Settings",
    "SizeResult",
    "SteadyResult",
    "machine_facts",
    "run_benchmark",
]

# Status flushes and Events of the last scenario settle before the idle window opens.
QUIET_SECONDS = 5.0
# Long enough for the debounced status write after a round's last namespace.
STATUS_SETTLE_SECONDS = 2.0
# Connections the harness keeps: one per concurrent writer, plus its watches and polls.
HARNESS_EXTRA_CONNECTIONS = 8
# After convergence, the operator's window of requests stays open until its statuses
# report the change and it has then written nothing for QUIET_SECONDS; the statuses get
# at most this long, and so does the wait for quiet after them.
SETTLE_TIMEOUT_SECONDS = 600.0
STATUS_POLL_SECONDS = 1.0
AUDIT_POLL_SECONDS = 0.5
# The credential whose source changes in the many-credentials scenario.
CHANGED_CREDENTIAL = 0


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
    tenant_secrets_mib: int
    external_kubeconfig: Path | None
    log_dir: Path
    # The many-credentials scenario: credentials (0 skips it) over this many namespaces.
    many_credentials: int = 0
    many_credentials_namespaces: int = 0
    # The Go floor's concurrency sweep; empty: no Go floor.
    go_floor_concurrency: tuple[int, ...] = ()
    # Requests of each one-thread request loop.
    request_loop_requests: int = request_loop.LOOP_REQUESTS


@dataclass(frozen=True)
class ColdStart:
    """An operator process started with the credential already in place: seconds from its
    process start, and what it used until it had settled."""

    converged: float
    first_write: float | None  # None without an audit log
    cpu_seconds: float  # since process start, imports and cache fill included
    requests: RequestCount | None
    peak_rss: int


@dataclass(frozen=True)
class SizeResult:
    """Seconds, one figure per round."""

    namespaces: int
    setup_seconds: float  # namespaces created and their ServiceAccounts present
    floor_fan_out: list[float] = field(default_factory=list)
    fan_out: list[float] = field(default_factory=list)
    floor_rotation: list[float] = field(default_factory=list)
    rotation: list[float] = field(default_factory=list)
    # The Python floor's CPU seconds (its own process's).
    floor_fan_out_cpu: list[float] = field(default_factory=list)
    floor_rotation_cpu: list[float] = field(default_factory=list)
    # What each round's operator asked of the API server (None without an audit log).
    operator_requests: list[RequestCount | None] = field(default_factory=list)
    # The round operator's CPU seconds from each action until it had settled.
    fan_out_cpu: list[float] = field(default_factory=list)
    rotation_cpu: list[float] = field(default_factory=list)
    cold: list[ColdStart] = field(default_factory=list)
    go_floor: list[GoFloorResult] = field(default_factory=list)
    go_floor_startup: list[float] = field(default_factory=list)
    # Client CPU seconds per request of the one-thread request loops, once a round.
    request_loop_python: list[float] = field(default_factory=list)
    request_loop_go: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class TenantSecrets:
    """A TenantRegistryCredential's namespace, where its editor made large Secrets: fresh
    operator processes' peak RSS (start-up included), without and with them."""

    mib: int
    create_seconds: float
    peak_rss_without: int
    peak_rss_with: int


@dataclass(frozen=True)
class SteadyResult:
    namespaces: int
    new_namespaces: scenarios.LatencyFigures
    # The operator's requests from the first new namespace until QUIET_SECONDS after the
    # last was served, and that window's length.
    new_namespace_requests: RequestCount | None
    new_namespace_window_seconds: float
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
    cold_start_with_unrelated: ColdStart  # fan-out from process start among them
    tenant_secrets: TenantSecrets


@dataclass(frozen=True)
class OperatorWindow:
    """What the operator did after the harness acted, until it had settled: its statuses
    report the change and it has then written nothing for QUIET_SECONDS.

    Seconds count from the harness's action; None where not known (no audit log, or
    the statuses did not report within SETTLE_TIMEOUT_SECONDS).
    """

    requests: RequestCount | None
    reported_after: float | None
    last_write_after: float | None


@dataclass(frozen=True)
class ManyCredentialsResult:
    """The many-credentials scenario's figures, one run of each."""

    credentials: int
    namespaces: int
    setup_seconds: float  # sources and namespaces created, ServiceAccounts present
    floor_fan_out: float
    fan_out: float
    fan_out_cpu: float  # the operator's, until its window closed
    fan_out_window: OperatorWindow
    changed_credential: str
    changed_namespaces: int  # those it serves: one replica update each is needed
    floor_source_change: float
    source_change: float
    source_change_cpu: float
    source_change_window: OperatorWindow
    # The source change's writes: to the changed credential's replicas, to that credential
    # itself (status, metadata), and to anything else, by resource.
    own_replica_writes: int | None
    own_credential_writes: int | None
    other_writes: dict[str, int] | None
    go_floor: list[GoFloorResult] = field(default_factory=list)


@dataclass
class BenchRun:
    settings: Settings
    machine: dict[str, object]
    cluster: str = ""
    sizes: list[SizeResult] = field(default_factory=list)
    steady: SteadyResult | None = None
    many_credentials: ManyCredentialsResult | None = None
    operators: list[OperatorRecord] = field(default_factory=list)
    go_floor_build: Build | None = None


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
    if settings.go_floor_concurrency:
        run.go_floor_build = ensure_binary()
    epoch = time.monotonic()
    largest = max(settings.sizes, default=0)
    for size in settings.sizes:
        pool = settings.concurrency + HARNESS_EXTRA_CONNECTIONS
        with bench_cluster(settings.external_kubeconfig, pool) as cluster:
            run.cluster = cluster.description
            SizeRun(cluster, settings, size, run, epoch).execute(steady=size == largest)
    if settings.many_credentials:
        pool = settings.concurrency + HARNESS_EXTRA_CONNECTIONS
        with bench_cluster(settings.external_kubeconfig, pool) as cluster:
            run.cluster = cluster.description
            run.many_credentials = ManyCredentialsRun(cluster, settings, run, epoch).execute()
    return run


def start_operator(
    cluster: BenchCluster, settings: Settings, run: BenchRun, epoch: float, label: str, log: str
) -> OperatorProcess:
    """An operator process (not yet started) as the operator's user; its record joins the run's."""
    record = OperatorRecord(label)
    run.operators.append(record)
    return OperatorProcess(
        cluster.operator_kubeconfig,
        OPERATOR_NAMESPACE,
        settings.concurrency,
        settings.log_dir / log,
        record,
        epoch,
        settings.stop_grace_seconds,
    )


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
        return start_operator(
            self.cluster,
            self.settings,
            self.run,
            self.epoch,
            f"N={self.size}: {label}",
            f"operator-n{self.size}-{self._operators_started}.log",
        )

    def count(self, start: datetime.datetime) -> RequestCount | None:
        """The operator's requests since `start`, as the API server logged them."""
        if self.cluster.audit_log is None:
            return None
        return count_requests(self.cluster.audit_log, OPERATOR_USER, start, now())

    def first_write_after(self, start: datetime.datetime) -> float | None:
        """Seconds from `start` to the operator's first write after it, from the audit log."""
        if self.cluster.audit_log is None:
            return None
        first = first_write(self.cluster.audit_log, OPERATOR_USER, start)
        return None if first is None else (first - start).total_seconds()

    def delete_credential(self) -> None:
        """Delete the credential and wait, with the operator running, until it has cleaned
        up and the credential is gone: the operator removes its finalizer last, and a
        credential left terminating would refuse the next one of the same name."""
        workload.delete_credential(self.kube)
        wait_until("the operator's clean-up", lambda: workload.cleaned_up(self.kube))
        wait_until(
            "the RegistryCredential to be deleted",
            lambda: not workload.credential_exists(self.kube),
        )

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
            new_start, new_clock = now(), time.perf_counter()
            latency = scenarios.measure_new_namespaces(
                kube,
                self.new_names,
                self.settings.namespace_rate,
                timeout=60 + len(self.new_names) / self.settings.namespace_rate,
                generation=self.generation,
            )
            time.sleep(QUIET_SECONDS)
            new_requests = self.count(new_start)
            new_window = time.perf_counter() - new_clock
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
        unrelated = self.settings.unrelated_secrets
        with self.operator(f"restarted, {unrelated} unrelated Secrets") as loaded:
            time.sleep(self.settings.settle_seconds)
            peak_with_unrelated = loaded.record.peak
            # The next process starts with the credential in place and no replicas.
            self.delete_credential()
        workload.apply_credential(kube)
        cold, operator = self.cold_start(f"cold start, {unrelated} unrelated Secrets", namespaces)
        try:
            tenant, operator = self.measure_tenant_secrets(operator)
            self.clean_up_external()
        finally:
            operator.stop()
        self.run.steady = SteadyResult(
            namespaces=self.size,
            new_namespaces=latency,
            new_namespace_requests=new_requests,
            new_namespace_window_seconds=new_window,
            idle=idle,
            restart=restart,
            unrelated_secrets=self.settings.unrelated_secrets,
            unrelated_create_seconds=unrelated_seconds,
            peak_rss_working=max(record.peak for record in self.round_records),
            peak_rss_restarted=restarted.record.peak,
            peak_rss_with_unrelated=peak_with_unrelated,
            cold_start_with_unrelated=cold,
            tenant_secrets=tenant,
        )

    def measure_tenant_secrets(self, operator: OperatorProcess) -> tuple[TenantSecrets, OperatorProcess]:
        """A tenant credential, then fresh operators' peak RSS without and with its editor's
        large Secrets. Stops `operator`; returns the figures and the last process, running."""
        kube, settle = self.kube, self.settings.settle_seconds
        workload.create_tenant(kube)
        wait_until("the tenant credential's copy", lambda: workload.tenant_served(kube))
        operator.stop()
        with self.operator("tenant credential") as without:
            time.sleep(settle)
        mib = self.settings.tenant_secrets_mib
        seconds = scenarios.create_tenant_secrets(
            kube, workload.TENANT_NAMESPACE, mib * 2**20, self.settings.concurrency
        )
        loaded = self.operator(f"tenant credential, {mib} MiB of its editor's Secrets").start()
        time.sleep(settle)
        figures = TenantSecrets(mib, seconds, without.record.peak, loaded.record.peak)
        return figures, loaded

    def measure_rounds(self, result: SizeResult, namespaces: frozenset[str]) -> OperatorProcess:
        """Floor, then operator, `rounds` times; returns the last round's operator, still running.

        Between rounds the credential is deleted, the operator cleans up and exits, and the
        floor's objects are reset, so every round starts from the same cluster.
        """
        operator = self.measure_round(result, namespaces, 1)
        for round_number in range(2, self.settings.rounds + 1):
            try:
                self.delete_credential()
            finally:
                operator.stop()
            workload.reset_floor(self.kube, self.names, self.settings.concurrency)
            operator = self.measure_round(result, namespaces, round_number)
        return operator

    def measure_round(
        self, result: SizeResult, namespaces: frozenset[str], round_number: int
    ) -> OperatorProcess:
        """The floors alone, then a new operator process: fan-out and rotation of each; then
        a cold fan-out. Returns the cold start's operator, still running."""
        kube, concurrency = self.kube, self.settings.concurrency
        self.measure_request_loops(result)
        fan_out, rotation = scenarios.measure_floor(
            kube,
            lambda: workload.python_floor(self.cluster.admin_kubeconfig, self.names, concurrency),
        )
        result.floor_fan_out.append(fan_out.seconds)
        result.floor_fan_out_cpu.append(fan_out.cpu_seconds)
        result.floor_rotation.append(rotation.seconds)
        result.floor_rotation_cpu.append(rotation.cpu_seconds)
        self.measure_go_floor(result, round_number)
        round_start = now()
        operator = self.operator(f"round {round_number}").start()
        self.round_records.append(operator.record)
        try:
            before = operator.cpu_seconds()
            result.fan_out.append(scenarios.measure_fan_out(kube, namespaces, self.generation))
            # Its status writes and Events belong to it, not to the rotation.
            time.sleep(STATUS_SETTLE_SECONDS)
            fanned_out = operator.cpu_seconds()
            result.fan_out_cpu.append(fanned_out - before)
            self.generation += 1
            result.rotation.append(scenarios.measure_rotation(kube, namespaces, self.generation))
            time.sleep(STATUS_SETTLE_SECONDS)
            result.rotation_cpu.append(operator.cpu_seconds() - fanned_out)
            result.operator_requests.append(self.count(round_start))
            # The next process starts with the credential in place and no replicas.
            self.delete_credential()
        finally:
            operator.stop()
        workload.apply_credential(kube)
        cold, operator = self.cold_start(f"round {round_number}, cold start", namespaces)
        self.round_records.append(operator.record)
        result.cold.append(cold)
        return operator

    def cold_start(
        self, label: str, namespaces: frozenset[str]
    ) -> tuple[ColdStart, OperatorProcess]:
        """With the credential in place and no operator running, start one and time its
        fan-out from process start; returns its figures and the process, still running."""
        operator = self.operator(label)
        launched: list[datetime.datetime] = []

        def launch() -> None:
            launched.append(now())
            operator.launch()

        try:
            converged = scenarios.measure_cold_fan_out(
                self.kube, namespaces, self.generation, launch
            )
            operator.wait_ready()
            time.sleep(STATUS_SETTLE_SECONDS)
            figures = ColdStart(
                converged=converged,
                first_write=self.first_write_after(launched[0]),
                cpu_seconds=operator.cpu_seconds(),
                requests=self.count(launched[0]),
                peak_rss=operator.record.peak,
            )
        except BaseException:
            operator.stop()
            raise
        return figures, operator

    def measure_request_loops(self, result: SizeResult) -> None:
        """What one request costs each language's bare client here, now: the floors' yardstick."""
        request_loop.prepare(self.kube)
        requests = self.settings.request_loop_requests
        python = request_loop.python_loop(self.cluster.admin_kubeconfig, requests)
        result.request_loop_python.append(python.cpu_per_request)
        build = self.run.go_floor_build
        if build is not None:
            go = request_loop.go_loop(build.binary, self.cluster.admin_kubeconfig, requests)
            result.request_loop_go.append(go.cpu_per_request)

    def measure_go_floor(self, result: SizeResult, round_number: int) -> None:
        """The Go floor's sweep under the observer's watches; it leaves the cluster as it found it."""
        build = self.run.go_floor_build
        if build is None:
            return
        plan = workload.go_floor_plan(self.names)
        results, startup = scenarios.measure_floor(
            self.kube,
            lambda: run_plan(
                build.binary,
                self.cluster.admin_kubeconfig,
                plan,
                self.settings.go_floor_concurrency,
                round_number,
            ),
        )
        result.go_floor.extend(results)
        result.go_floor_startup.append(startup)

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
        workload.delete_tenant(self.kube)
        # The operator's namespace and identity stay: the next size uses them again.
        delete_namespaces(self.kube, [*self.names, *self.new_names], self.settings.concurrency)


class ManyCredentialsRun:
    """Many credentials over many namespaces, on a cluster of their own: floor, then operator.

    The floor (one Secret create and one ServiceAccount patch per namespace, then one
    Secret update per namespace the changed credential serves) runs first; then one
    operator process times the fan-out of every credential and the change of one
    credential's source, and the audit log says what it sent in each.
    """

    def __init__(
        self, cluster: BenchCluster, settings: Settings, run: BenchRun, epoch: float
    ) -> None:
        self.cluster = cluster
        self.kube = cluster.admin
        self.settings = settings
        self.run = run
        self.epoch = epoch
        self.fleet = many_credentials.Fleet(
            settings.many_credentials, settings.many_credentials_namespaces
        )

    def execute(self) -> ManyCredentialsResult:
        kube, fleet, concurrency = self.kube, self.fleet, self.settings.concurrency
        selector = many_credentials.REPLICAS_SELECTOR
        started = time.perf_counter()
        fleet.create_sources(kube, concurrency)
        fleet.create_namespaces(kube, concurrency)
        namespaces = frozenset(fleet.namespaces)
        wait_until(
            "default ServiceAccounts", lambda: workload.default_accounts_exist(kube, namespaces)
        )
        setup_seconds = time.perf_counter() - started
        floor_fan_out = scenarios.measure_floor(
            kube, lambda: fleet.floor_fan_out(kube, concurrency), selector
        )
        floor_change = scenarios.measure_floor(
            kube,
            lambda: fleet.floor_source_change(kube, CHANGED_CREDENTIAL, 1, concurrency),
            selector,
        )
        go_results: list[GoFloorResult] = []
        build = self.run.go_floor_build
        if build is not None:
            plan = fleet.go_floor_plan(CHANGED_CREDENTIAL, 1)
            go_results, _ = scenarios.measure_floor(
                kube,
                lambda: run_plan(
                    build.binary,
                    self.cluster.admin_kubeconfig,
                    plan,
                    self.settings.go_floor_concurrency,
                    1,
                ),
                selector,
            )
        label = f"{fleet.credentials} credentials x {len(fleet.namespaces)} namespaces"
        log = f"operator-many-{fleet.credentials}x{len(fleet.namespaces)}.log"
        with start_operator(
            self.cluster, self.settings, self.run, self.epoch, label, log
        ) as operator:
            fan_out_start, fan_out_clock = now(), time.perf_counter()
            before = operator.cpu_seconds()
            fan_out = scenarios.measure_many_fan_out(kube, fleet, concurrency)
            fan_out_window, _ = self.settle(
                fan_out_start, fan_out_clock, lambda: fleet.reported(kube, {})
            )
            fanned_out = operator.cpu_seconds()
            generations = {CHANGED_CREDENTIAL: 1}
            change_start, change_clock = now(), time.perf_counter()
            change = scenarios.measure_one_source_change(kube, fleet, CHANGED_CREDENTIAL, 1)
            change_window, written = self.settle(
                change_start, change_clock, lambda: fleet.reported(kube, generations)
            )
            changed = operator.cpu_seconds()
            self.clean_up_external()
        split = (
            many_credentials.writes_split(fleet, CHANGED_CREDENTIAL, written)
            if written is not None
            else (None, None, None)
        )
        return ManyCredentialsResult(
            credentials=fleet.credentials,
            namespaces=len(fleet.namespaces),
            setup_seconds=setup_seconds,
            floor_fan_out=floor_fan_out,
            fan_out=fan_out,
            fan_out_cpu=fanned_out - before,
            fan_out_window=fan_out_window,
            changed_credential=fleet.credential(CHANGED_CREDENTIAL),
            changed_namespaces=len(fleet.served(CHANGED_CREDENTIAL)),
            floor_source_change=floor_change,
            source_change=change,
            source_change_cpu=changed - fanned_out,
            source_change_window=change_window,
            own_replica_writes=split[0],
            own_credential_writes=split[1],
            other_writes=split[2],
            go_floor=go_results,
        )

    def settle(
        self, start: datetime.datetime, clock: float, reported: Callable[[], bool]
    ) -> tuple[OperatorWindow, dict[tuple[str, str, str], int] | None]:
        """Wait until `reported` (the statuses show the change), then until the operator has
        written nothing for QUIET_SECONDS; return what it did since `start` (wall clock;
        `clock`, the same moment by time.perf_counter) and, with an audit log, its writes by
        object. Polling the statuses each second costs the API server a list of the
        credentials; it begins only once the replicas have converged."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
        reported_after = None
        while time.monotonic() < deadline:
            if reported():
                reported_after = time.perf_counter() - clock
                break
            time.sleep(STATUS_POLL_SECONDS)
        audit_log = self.cluster.audit_log
        if audit_log is None:
            time.sleep(QUIET_SECONDS)
            return OperatorWindow(None, reported_after, None), None
        deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
        while True:
            last = last_write(audit_log, OPERATOR_USER, start)
            quiet = (now() - (last or start)).total_seconds()
            if quiet >= QUIET_SECONDS or time.monotonic() > deadline:
                break  # past the deadline it is still writing: the window closes, and says so
            time.sleep(AUDIT_POLL_SECONDS)
        end = now()
        window = OperatorWindow(
            count_requests(audit_log, OPERATOR_USER, start, end),
            reported_after,
            None if last is None else (last - start).total_seconds(),
        )
        return window, writes_by_object(audit_log, OPERATOR_USER, start, end)

    def clean_up_external(self) -> None:
        """On someone else's cluster, remove what the scenario made; needs the operator running."""
        if self.settings.external_kubeconfig is None:
            return  # the local control plane is thrown away whole
        kube, concurrency = self.kube, self.settings.concurrency
        self.fleet.delete_credentials(kube, concurrency)
        wait_until("the credentials to be deleted", lambda: self.fleet.credentials_gone(kube))
        self.fleet.delete_the_rest(kube, concurrency)
