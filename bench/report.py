"""Judge the figures against the targets, print the table, write JSON and a plot.

Every operator time stands beside two floors: the Python floor (a Python client at the
operator's concurrency) and the Go floor at its best concurrency of the sweep; the
targets are set against the Go floor. Targets are reported, never asserted: a
benchmark's figures depend on the machine.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.audit import RequestCount
from bench.go_floor import Best, GoFloorResult, best
from bench.run import (
    SETTLE_TIMEOUT_SECONDS,
    BenchRun,
    ColdStart,
    ManyCredentialsResult,
    SizeResult,
    SteadyResult,
)
from bench.scenarios import percentile

__all__ = ["Row", "rows", "table", "write_json", "write_plot"]

MIB = 2**20
# Fan-out (warm and cold) and rotation against the best Go floor.
MAX_RATIO_TO_GO_FLOOR = 1.15
# The operator's CPU seconds against the Go floor's, per scenario.
MAX_CPU_RATIO_TO_GO_FLOOR = 1.5
# The ratio targets are set at platform scale; below it, fixed latencies of well under a
# second (process start, first list) dominate both sides and the ratio says little.
RATIO_TARGET_MIN_NAMESPACES = 1000
MAX_P99_OVER_FLOOR_SECONDS = 0.1
# A new namespace needs its replica and its ServiceAccount patch; statuses coalesce to
# at most one write a second per credential.
WRITES_PER_NEW_NAMESPACE = 2
STATUS_WRITES_PER_SECOND = 1
PER_NAMESPACE_RESOURCES = frozenset({"secrets", "serviceaccounts"})
STATUS_RESOURCE = "registrycredentials/status"
# The memory target is set at N = 1000; above it the caches grow with the cluster.
MAX_RSS_MIB = 100
RSS_TARGET_MAX_NAMESPACES = 1000
MAX_RSS_GROWTH = 0.10
# A namespace editor's large Secrets, against the same start without them.
MAX_TENANT_RSS_GROWTH = 0.20


@dataclass(frozen=True)
class Row:
    scenario: str
    namespaces: int
    operator: str
    floor: str  # the Python floor
    comparison: str  # against the Python floor
    target: str
    met: bool | None  # None: a figure without a target
    go_floor: str = ""  # the best Go floor, "at" its concurrency
    go_comparison: str = ""


def _seconds(values: list[float]) -> str:
    """The median, and the range when there are several rounds."""
    if len(values) == 1:
        return f"{values[0]:.2f} s"
    return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


def _ratio_row(
    scenario: str,
    namespaces: int,
    operator: list[float],
    floor: list[float],
    go: Best | None,
    has_target: bool = True,
) -> Row:
    """Seconds against both floors; the target is against the Go floor's best."""
    median = statistics.median(operator)
    ratio = median / statistics.median(floor)
    targeted = has_target and go is not None and namespaces >= RATIO_TARGET_MIN_NAMESPACES
    go_ratio = median / statistics.median(go.seconds) if go is not None else None
    return Row(
        scenario,
        namespaces,
        _seconds(operator),
        _seconds(floor),
        f"{ratio:.2f}x",
        f"<= {MAX_RATIO_TO_GO_FLOOR}x Go floor" if targeted else "",
        go_ratio <= MAX_RATIO_TO_GO_FLOOR if targeted and go_ratio is not None else None,
        f"{_seconds(go.seconds)} at {go.concurrency}" if go is not None else "",
        f"{go_ratio:.2f}x" if go_ratio is not None else "",
    )


def _per_thousand(cpu_seconds: list[float], namespaces: int) -> float:
    return statistics.median(cpu_seconds) * 1000 / namespaces


def _cpu_row(
    scenario: str,
    namespaces: int,
    operator: list[float],
    go: Best | None,
    has_target: bool = True,
    python_floor: list[float] | None = None,
) -> Row:
    """CPU seconds per 1,000 namespaces: the operator process's against the Go floor's and,
    where measured, the Python floor's writer threads'."""
    mine = _per_thousand(operator, namespaces)
    targeted = has_target and go is not None and namespaces >= RATIO_TARGET_MIN_NAMESPACES
    theirs = _per_thousand(go.cpu_seconds, namespaces) if go is not None else None
    ratio = mine / theirs if theirs else None
    python = _per_thousand(python_floor, namespaces) if python_floor else None
    return Row(
        f"CPU-s per 1000 namespaces: {scenario}",
        namespaces,
        f"{mine:.2f}",
        f"{python:.2f}" if python is not None else "",
        f"{mine / python:.2f}x" if python else "",
        f"<= {MAX_CPU_RATIO_TO_GO_FLOOR}x Go floor" if targeted else "",
        ratio <= MAX_CPU_RATIO_TO_GO_FLOOR if targeted and ratio is not None else None,
        f"{theirs:.2f} at {go.concurrency}" if go is not None and theirs is not None else "",
        f"{ratio:.2f}x" if ratio is not None else "",
    )


def _milliseconds(values: list[float]) -> str:
    """Seconds as milliseconds: the median, and the range when there are several."""
    if len(values) == 1:
        return f"{values[0] * 1000:.3f} ms"
    low, high = min(values) * 1000, max(values) * 1000
    return f"{statistics.median(values) * 1000:.3f} ms ({low:.3f}-{high:.3f})"


def _request_cost_rows(size: SizeResult, go_fan_out: Best | None, go_rotation: Best | None) -> list[Row]:
    """Client CPU per request of the one-thread loops beside the floors' per write, measured
    in the same run: a floor should cost about what a bare request does."""
    n = size.namespaces
    loops = Row(
        "client CPU per request: one-thread loop (Python urllib3 + json; Go client-go)",
        n,
        "",
        _milliseconds(size.request_loop_python),
        "",
        "",
        None,
        _milliseconds(size.request_loop_go) if size.request_loop_go else "",
    )
    table = [loops]
    for scenario, cpu, go, writes in (
        ("fan-out", size.floor_fan_out_cpu, go_fan_out, 2 * n),
        ("rotation", size.floor_rotation_cpu, go_rotation, n),
    ):
        per_write = [seconds / writes for seconds in cpu]
        go_per_write = [seconds / writes for seconds in go.cpu_seconds] if go is not None else []
        loop = statistics.median(size.request_loop_python)
        table.append(
            Row(
                f"client CPU per write: floors, {scenario}",
                n,
                "",
                _milliseconds(per_write),
                f"{statistics.median(per_write) / loop:.2f}x the Python loop",
                "",
                None,
                f"{_milliseconds(go_per_write)} at {go.concurrency}" if go is not None else "",
                f"{statistics.median(go_per_write) / statistics.median(size.request_loop_go):.2f}x the Go loop"
                if go is not None and size.request_loop_go
                else "",
            )
        )
    return table


def _sweep_row(scenario: str, namespaces: int, results: list[GoFloorResult]) -> Row | None:
    """The Go floor's median seconds at each concurrency of the sweep."""
    found = best(results, scenario)
    if found is None:
        return None
    sweep = ", ".join(f"{c}: {seconds:.2f} s" for c, seconds in found.by_concurrency.items())
    return Row(f"Go floor sweep: {scenario}", namespaces, "", "", "", "", None, sweep)


def _round_writes_row(size: SizeResult) -> Row:
    """The operator's writes in a round against the floor's: a create, a patch and an update per namespace."""
    counts = [requests.writes for requests in size.operator_requests if requests is not None]
    return _most_writes_row("writes per round", size.namespaces, counts, 3 * size.namespaces)


def _most_writes_row(label: str, namespaces: int, counts: list[int], floor: int) -> Row:
    """The most writes of any round against the floor's; n/a without an audit log."""
    if not counts:
        return Row(label, namespaces, "n/a (no audit log)", str(floor), "", "", None)
    most = max(counts)
    return Row(f"{label} (most)", namespaces, str(most), str(floor), f"{most - floor:+d}", "", None)


def _writes_row(scenario: str, namespaces: int, writes: int | None) -> Row:
    if writes is None:
        return Row(scenario, namespaces, "n/a (no audit log)", "", "", "0 writes", None)
    return Row(scenario, namespaces, f"{writes} writes", "", "", "0 writes", writes == 0)


def rows(run: BenchRun) -> list[Row]:
    """Every figure of the run, next to its floors and target."""
    table = []
    for size in run.sizes:
        table += _size_rows(size)
    if run.steady is not None:
        table += _steady_rows(run, run.steady)
    if run.many_credentials is not None:
        table += _many_credentials_rows(run.many_credentials)
    return table + [_pool_row(run), _stop_row(run)]


def _size_rows(size: SizeResult) -> list[Row]:
    n = size.namespaces
    go_fan_out, go_rotation = best(size.go_floor, "fan-out"), best(size.go_floor, "rotation")
    cold = [start.converged for start in size.cold]
    table = [
        _ratio_row("fan-out, warm", n, size.fan_out, size.floor_fan_out, go_fan_out),
        _ratio_row("fan-out, cold (from process start)", n, cold, size.floor_fan_out, go_fan_out),
        _ratio_row("rotation", n, size.rotation, size.floor_rotation, go_rotation),
    ]
    table += [
        row
        for row in (_sweep_row(name, n, size.go_floor) for name in ("fan-out", "rotation"))
        if row is not None
    ]
    table += [
        # The harness's own time, before any clock: what a run at this size costs.
        Row(
            "setup: namespaces created, ServiceAccounts present",
            n,
            f"{size.setup_seconds:.1f} s (harness)",
            "",
            "",
            "",
            None,
        ),
        _cpu_row("fan-out, warm", n, size.fan_out_cpu, go_fan_out, python_floor=size.floor_fan_out_cpu),
        # From process start: imports and the first lists are part of a cold start.
        _cpu_row(
            "fan-out, cold",
            n,
            [start.cpu_seconds for start in size.cold],
            go_fan_out,
            python_floor=size.floor_fan_out_cpu,
        ),
        _cpu_row("rotation", n, size.rotation_cpu, go_rotation, python_floor=size.floor_rotation_cpu),
        *_request_cost_rows(size, go_fan_out, go_rotation),
        _round_writes_row(size),
        _cold_writes_row(size),
    ]
    first_writes = [start.first_write for start in size.cold if start.first_write is not None]
    if first_writes:
        table.append(
            Row(
                "cold start: first write after process start",
                n,
                _seconds(first_writes),
                "",
                "",
                "",
                None,
            )
        )
    return table


def _cold_writes_row(size: SizeResult) -> Row:
    """The cold fan-out's writes against the floor's: a create and a patch per namespace."""
    counts = [start.requests.writes for start in size.cold if start.requests is not None]
    return _most_writes_row("writes in cold fan-out", size.namespaces, counts, 2 * size.namespaces)


def _new_namespace_writes_row(steady: SteadyResult) -> Row:
    """Writes while the new namespaces came: two per namespace, statuses at most one a second."""
    created = len(steady.new_namespaces.operator) + steady.new_namespaces.missing
    requests: RequestCount | None = steady.new_namespace_requests
    label = f"new namespaces: writes ({created} namespaces, {steady.new_namespace_window_seconds:.0f} s)"
    allowed_status = math.ceil(steady.new_namespace_window_seconds) * STATUS_WRITES_PER_SECOND
    allowed = f"<= {WRITES_PER_NEW_NAMESPACE}/namespace + <= {allowed_status} status, 0 other"
    if requests is None:
        return Row(label, steady.namespaces, "n/a (no audit log)", "", "", allowed, None)
    per_namespace = status = 0
    other: dict[str, int] = {}
    for request, count in requests.write_requests.items():
        resource = request.split()[1]
        if resource in PER_NAMESPACE_RESOURCES:
            per_namespace += count
        elif resource == STATUS_RESOURCE:
            status += count
        else:
            other[request] = other.get(request, 0) + count
    others = sum(other.values())
    detail = ", ".join(f"{request} {count}" for request, count in sorted(other.items()))
    return Row(
        label,
        steady.namespaces,
        f"{per_namespace} replica/account + {status} status + {others} other"
        + (f" ({detail})" if detail else ""),
        f"{WRITES_PER_NEW_NAMESPACE * created}",
        f"{per_namespace + status + others - WRITES_PER_NEW_NAMESPACE * created:+d}",
        allowed,
        per_namespace <= WRITES_PER_NEW_NAMESPACE * created
        and status <= allowed_status
        and others == 0,
    )


def _cold_start_rows(steady: SteadyResult) -> list[Row]:
    """A cold start among the unrelated Secrets: the platform-scale start-up figures."""
    start: ColdStart = steady.cold_start_with_unrelated
    n, label = steady.namespaces, f"cold start, {steady.unrelated_secrets} unrelated Secrets"
    first = "n/a (no audit log)" if start.first_write is None else f"{start.first_write:.2f} s"
    return [
        Row(f"{label}: first write", n, first, "", "", "", None),
        Row(f"{label}: converged", n, f"{start.converged:.2f} s", "", "", "", None),
        Row(f"{label}: CPU-s", n, f"{start.cpu_seconds:.2f}", "", "", "", None),
        Row(f"{label}: peak RSS", n, f"{start.peak_rss / MIB:.0f} MiB", "", "", "", None),
    ]


def _pool_row(run: BenchRun) -> Row:
    """urllib3's "Connection pool is full" warnings in every operator process's log."""
    stopped = [record for record in run.operators if record.exit_code is not None]
    warnings = sum(record.pool_warnings for record in stopped)
    most = max((record.pool_warnings for record in stopped), default=0)
    return Row(
        "connection-pool warnings (operator logs)",
        max(run.settings.sizes, default=run.settings.many_credentials_namespaces),
        f"{warnings} in {len(stopped)} processes (most in one: {most})",
        "",
        "",
        "0",
        warnings == 0,
    )


def _steady_rows(run: BenchRun, steady: SteadyResult) -> list[Row]:
    table = []
    n = steady.namespaces
    latency = steady.new_namespaces
    label = f"new namespace ({len(latency.controller_manager)} at {latency.rate_per_second:g}/s)"
    for name, fraction in (("p50", 0.5), ("p99", 0.99)):
        operator, floor = (
            percentile(latency.operator, fraction),
            percentile(latency.controller_manager, fraction),
        )
        over = operator - floor
        is_p99 = name == "p99"
        table.append(
            Row(
                f"{label} {name}",
                n,
                f"{operator:.3f} s",
                f"{floor:.3f} s",
                f"+{over:.3f} s"
                + (f" ({latency.missing} never converged)" if latency.missing else ""),
                f"<= floor + {MAX_P99_OVER_FLOOR_SECONDS} s" if is_p99 else "",
                (over <= MAX_P99_OVER_FLOOR_SECONDS and not latency.missing) if is_p99 else None,
            )
        )
    table.append(_new_namespace_writes_row(steady))
    idle_seconds = run.settings.idle_seconds
    table.append(
        _writes_row(
            f"idle writes ({idle_seconds:g} s)", n, steady.idle.writes if steady.idle else None
        )
    )
    table.append(
        _writes_row(
            f"restart writes (stop, start, {run.settings.settle_seconds:g} s)",
            n,
            steady.restart.writes if steady.restart else None,
        )
    )
    # The absolute bound holds at N = 1000; above it only the growth is judged.
    capped = n <= RSS_TARGET_MAX_NAMESPACES
    cap = f"< {MAX_RSS_MIB} MiB" if capped else ""

    def under_cap(rss: int) -> bool:
        return rss < MAX_RSS_MIB * MIB or not capped

    for label, rss in (
        ("peak RSS, fan-out, rotation, cold start, new namespaces, idle", steady.peak_rss_working),
        ("peak RSS, restarted, 0 unrelated Secrets", steady.peak_rss_restarted),
    ):
        table.append(
            Row(label, n, f"{rss / MIB:.0f} MiB", "", "", cap, under_cap(rss) if capped else None)
        )
    table.append(
        Row(
            f"setup: {steady.unrelated_secrets} unrelated Secrets created",
            n,
            f"{steady.unrelated_create_seconds:.1f} s (harness)",
            "",
            "",
            "",
            None,
        )
    )
    growth = steady.peak_rss_with_unrelated / steady.peak_rss_restarted - 1
    table.append(
        Row(
            f"peak RSS, restarted, {steady.unrelated_secrets} unrelated Secrets",
            n,
            f"{steady.peak_rss_with_unrelated / MIB:.0f} MiB",
            "",
            f"{growth:+.1%} vs 0",
            f"{cap + ', ' if cap else ''}within {MAX_RSS_GROWTH:.0%}",
            under_cap(steady.peak_rss_with_unrelated) and abs(growth) <= MAX_RSS_GROWTH,
        )
    )
    return table + _cold_start_rows(steady) + _tenant_rows(steady)


def _tenant_rows(steady: SteadyResult) -> list[Row]:
    """What a namespace editor's large Secrets cost the operator's memory."""
    tenant, n = steady.tenant_secrets, steady.namespaces
    growth = tenant.peak_rss_with / tenant.peak_rss_without - 1
    return [
        Row(
            f"setup: {tenant.mib} MiB of a tenant editor's Secrets created",
            n, f"{tenant.create_seconds:.1f} s (harness)", "", "", "", None,
        ),
        Row(
            "peak RSS with a tenant credential, from start",
            n, f"{tenant.peak_rss_without / MIB:.0f} MiB", "", "", "", None,
        ),
        Row(
            f"peak RSS with a tenant credential and {tenant.mib} MiB of its editor's Secrets, from start",
            n,
            f"{tenant.peak_rss_with / MIB:.0f} MiB",
            "",
            f"{growth:+.1%} vs without",
            f"within {MAX_TENANT_RSS_GROWTH:.0%}",
            growth <= MAX_TENANT_RSS_GROWTH,
        ),
    ]


def _by_verb(requests: dict[str, int]) -> str:
    verbs: dict[str, int] = {}
    for request, count in requests.items():
        verb = request.split()[0]
        verbs[verb] = verbs.get(verb, 0) + count
    return ", ".join(f"{verb} {count}" for verb, count in sorted(verbs.items()))


def _reported_row(scenario: str, n: int, reported: float | None, converged: float) -> Row:
    """When the operator's statuses said what the watches had seen, seconds after the action."""
    if reported is None:
        return Row(scenario, n, f"not in {SETTLE_TIMEOUT_SECONDS:.0f} s", "", "", "", None)
    after = f"{reported - converged:+.2f} s after the replicas"
    return Row(scenario, n, f"{reported:.2f} s", "", after, "", None)


def _many_credentials_rows(many: ManyCredentialsResult) -> list[Row]:
    """Fan-out of every credential and one source's change, against the writes they need."""
    n, credentials = many.namespaces, many.credentials
    each = f"{n // credentials}" if n % credentials == 0 else f"{n / credentials:.1f}"
    go_fan_out = best(many.go_floor, "fan-out")
    table = [
        _ratio_row(
            f"many credentials: fan-out ({credentials} x {each} namespaces)",
            n,
            [many.fan_out],
            [many.floor_fan_out],
            go_fan_out,
            has_target=False,
        ),
        # Until its window closed: the statuses' work is part of the fan-out.
        _cpu_row(
            "many credentials: fan-out, until reported", n, [many.fan_out_cpu], go_fan_out, False
        ),
    ]
    table.append(
        _reported_row(
            f"many credentials: every status reports synced ({credentials})",
            n,
            many.fan_out_window.reported_after,
            many.fan_out,
        )
    )
    # The floor: one Secret create and one ServiceAccount patch per namespace.
    floor_writes = 2 * n
    requests = many.fan_out_window.requests
    if requests is None:
        for name in ("writes", "reads"):
            table.append(
                Row(
                    f"many credentials: {name} in fan-out",
                    n,
                    "n/a (no audit log)",
                    "",
                    "",
                    "",
                    None,
                )
            )
    else:
        table.append(
            Row(
                "many credentials: writes in fan-out",
                n,
                str(requests.writes),
                str(floor_writes),
                f"{requests.writes - floor_writes:+d}",
                "",
                None,
            )
        )
        reads = requests.read_requests
        table.append(
            Row(
                "many credentials: reads in fan-out",
                n,
                f"{requests.reads} ({_by_verb(reads)})" if reads else "0",
                "0",
                f"+{requests.reads}",
                "",
                None,
            )
        )
    served = many.changed_namespaces
    table.append(
        _ratio_row(
            f"one source changes: time to its {served} replicas (1 of {credentials} credentials)",
            n,
            [many.source_change],
            [many.floor_source_change],
            best(many.go_floor, "source change"),
            has_target=False,
        )
    )
    table.append(
        _reported_row(
            "one source changes: its status reports the new content",
            n,
            many.source_change_window.reported_after,
            many.source_change,
        )
    )
    # Its replicas, one update each, and its status (the content hash is in it).
    allowed = served + 1
    if many.own_replica_writes is None or many.own_credential_writes is None:
        table.append(
            Row("one source changes: writes", n, "n/a (no audit log)", str(served), "", "", None)
        )
        return table
    elsewhere = sum((many.other_writes or {}).values())
    total = many.own_replica_writes + many.own_credential_writes + elsewhere
    table.append(
        Row(
            "one source changes: writes",
            n,
            f"{total} ({many.own_replica_writes} its replicas, "
            f"{many.own_credential_writes} its credential, {elsewhere} elsewhere)",
            f"{served} (+1 status)",
            f"{total - served:+d}",
            f"<= {allowed}, none elsewhere",
            total <= allowed and elsewhere == 0,
        )
    )
    return table


def _stop_row(run: BenchRun) -> Row:
    stopped = [record for record in run.operators if record.stop_seconds is not None]
    killed = [record for record in stopped if record.killed]
    slowest = max((record.stop_seconds or 0.0 for record in stopped), default=0.0)
    figure = f"killed {len(killed)} of {len(stopped)}" if killed else f"all {len(stopped)} exited"
    return Row(
        "operator stop on SIGTERM",
        max(run.settings.sizes, default=run.settings.many_credentials_namespaces),
        f"{figure}, slowest {slowest:.1f} s",
        "",
        "",
        "",
        None,
    )


def table(run: BenchRun, lines: list[Row]) -> str:
    machine = run.machine
    header = (
        f"regcred-operator benchmark: {run.cluster}; {machine['cores']} cores ({machine['cpu']}), "
        f"{machine['memory_gib']} GiB, load average {machine['load_average']} at the start; "
        f"concurrency {run.settings.concurrency} for operator and floor; convergence timed from watch events"
    )
    columns = (
        "scenario",
        "N",
        "operator",
        "Python floor",
        "vs Py",
        "Go floor (best, at concurrency)",
        "vs Go",
        "target",
        "met",
    )
    cells = [columns] + [
        (
            r.scenario,
            str(r.namespaces),
            r.operator,
            r.floor,
            r.comparison,
            r.go_floor,
            r.go_comparison,
            r.target,
            "" if r.met is None else ("yes" if r.met else "NO"),
        )
        for r in lines
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    rendered = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in cells
    ]
    rendered.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join([header, "", *rendered])


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def write_json(run: BenchRun, lines: list[Row], path: Path) -> None:
    document = {
        "rows": [dataclasses.asdict(row) for row in lines],
        **dataclasses.asdict(run),
    }
    document["go_floor_best"] = {
        str(size.namespaces): {
            scenario: dataclasses.asdict(found)
            for scenario in ("fan-out", "rotation")
            if (found := best(size.go_floor, scenario)) is not None
        }
        for size in run.sizes
    }
    if run.steady is not None:
        latency = run.steady.new_namespaces
        document["new_namespace_percentiles"] = {
            who: {f"p{round(f * 100)}": percentile(values, f) for f in (0.5, 0.9, 0.99, 1.0)}
            for who, values in (
                ("operator", latency.operator),
                ("controller_manager", latency.controller_manager),
            )
        }
    path.write_text(json.dumps(document, indent=1, default=_plain) + "\n")


def write_plot(run: BenchRun, path: Path) -> bool:
    """Operator vs both floors' times, new-namespace latency CDFs and RSS over time; False
    without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, (times, latency, memory) = plt.subplots(1, 3, figsize=(18, 5.5))
    labels: list[str] = []
    operator: list[float] = []
    floor: list[float] = []
    go: list[float] = []  # NaN (no bar) where the Go floor did not run

    def bars(label: str, mine: list[float], theirs: list[float], go_best: Best | None) -> None:
        labels.append(label)
        operator.append(statistics.median(mine))
        floor.append(statistics.median(theirs))
        go.append(statistics.median(go_best.seconds) if go_best is not None else math.nan)

    for size in run.sizes:
        go_fan_out = best(size.go_floor, "fan-out")
        cold = [start.converged for start in size.cold]
        n = size.namespaces
        bars(f"fan-out\nwarm\nN={n}", size.fan_out, size.floor_fan_out, go_fan_out)
        bars(f"fan-out\ncold\nN={n}", cold, size.floor_fan_out, go_fan_out)
        bars(
            f"rotation\nN={n}", size.rotation, size.floor_rotation, best(size.go_floor, "rotation")
        )
    many = run.many_credentials
    if many is not None:
        bars(
            f"fan-out, {many.credentials}\ncredentials\nN={many.namespaces}",
            [many.fan_out],
            [many.floor_fan_out],
            best(many.go_floor, "fan-out"),
        )
        bars(
            f"one source\nchanges\nN={many.namespaces}",
            [many.source_change],
            [many.floor_source_change],
            best(many.go_floor, "source change"),
        )
    positions = range(len(labels))
    times.bar([p - 0.27 for p in positions], operator, 0.27, label="operator")
    times.bar([p for p in positions], floor, 0.27, label="Python floor (direct writes)")
    times.bar(
        [p + 0.27 for p in positions], go, 0.27, label="Go floor (client-go, best concurrency)"
    )
    times.set_xticks(list(positions), labels, fontsize="small")
    times.set_ylabel("seconds")
    times.set_title(
        f"Convergence time, median of {run.settings.rounds}"
        + (" (many credentials: one run)" if many is not None else "")
        + f"; operator and Python floor at {run.settings.concurrency}, Go floor at its best"
    )
    times.legend()

    if run.steady is not None:
        figures = run.steady.new_namespaces
        for values, name in (
            (figures.operator, "operator: replica + ServiceAccount patched"),
            (figures.controller_manager, "floor: controller manager creates ServiceAccount"),
        ):
            latency.ecdf(values, label=name)
        latency.set_xlabel("seconds after namespace creation")
        latency.set_ylabel("fraction of namespaces")
        latency.set_title(
            f"New namespaces at {figures.rate_per_second:g}/s, N={run.steady.namespaces}"
        )
        latency.legend(loc="lower right")

    for record in run.operators:
        memory.plot(
            [t for t, _ in record.samples],
            [rss / MIB for _, rss in record.samples],
            label=record.label,
        )
    memory.axhline(MAX_RSS_MIB, color="grey", linestyle="--", label=f"target {MAX_RSS_MIB} MiB")
    memory.set_xlabel("seconds since the benchmark began")
    memory.set_ylabel("operator RSS (MiB)")
    memory.set_title("Operator memory, one line per process")
    memory.legend(fontsize="small", loc="lower right")
    figure.suptitle(f"regcred-operator benchmark, {run.machine['cores']} cores, {run.cluster}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
