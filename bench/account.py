"""Where the operator's CPU goes in one warm fan-out: every thread, native frames included.

    python -m bench.account --namespaces 1000 --output profile-1000

A fresh local control plane with N selected namespaces and one operator process (as the
benchmark starts it), ready; then `--repeat` warm fan-outs (the credential applied until
every replica and ServiceAccount is as wanted, plus 2 s for status writes; deleted and
cleaned up after each). The first runs under perf (`<output>.perf.data`: on-CPU samples
of every thread, native and kernel frames) and py-spy (`<output>.txt`: Python frames of
every thread, without `--gil` and without stopping the process; `--native` would stop it
for every sample, which tripled the fan-out's time). For each fan-out it prints, from
/proc, the process's CPU seconds in all and per thread id (py-spy's stacks name the
threads), and the work items the operator processed (its `regcred_reconciles_total`).
`bench.stacks` sorts py-spy's stacks into categories.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from bench import scenarios, workload
from bench.cluster import OPERATOR_NAMESPACE, bench_cluster, wait_until
from bench.operator_process import OperatorProcess, OperatorRecord
from regcred.kube.client import KubeClient
from regcred_dev.controlplane.runner import free_port

CONCURRENCY = 16
SETTLE_SECONDS = 2.0
SAMPLE_RATE = 100
PERF_RATE = 499


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of `pid`, by thread id."""
    return {
        thread.id: thread.user_time + thread.system_time
        for thread in psutil.Process(pid).threads()
    }


def start_samplers(pid: int, output: Path) -> list[subprocess.Popen[bytes]]:
    """perf (on-CPU samples of every thread, native and kernel frames: which library and
    system call the CPU goes to) and py-spy (Python frames of threads on the CPU, without
    stopping the process: which of the operator's code paths)."""
    py_spy = Path(sys.executable).parent / "py-spy"
    commands = [
        ["perf", "record", "-F", str(PERF_RATE), "-g", "-p", str(pid),
         "-o", str(output.with_suffix(".perf.data"))],
        [str(py_spy), "record", "--pid", str(pid), "--threads", "--nonblocking",
         "--rate", str(SAMPLE_RATE), "--format", "raw", "--output", str(output.with_suffix(".txt"))],
    ]
    log = output.with_suffix(".samplers.log").open("w")
    return [subprocess.Popen(command, stdout=log, stderr=log) for command in commands]


def work_items(metrics_url: str) -> dict[str, float]:
    """The operator's work items processed so far, by kind and result (its metrics)."""
    with urllib.request.urlopen(metrics_url, timeout=5) as reply:
        text = reply.read().decode()
    return {
        line.split("{", 1)[1].split("}", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("regcred_reconciles_total{")
    }


def measure(
    kube: KubeClient, operator: OperatorProcess, names: list[str], metrics_url: str
) -> dict[str, Any]:
    """One warm fan-out: its seconds, the operator's CPU over it, in all and per thread,
    and the work items it processed."""
    items_before = work_items(metrics_url)
    before, cpu_before = thread_cpu(operator.pid), operator.cpu_seconds()
    seconds = scenarios.measure_fan_out(kube, frozenset(names), 0)
    time.sleep(SETTLE_SECONDS)
    after, cpu_after = thread_cpu(operator.pid), operator.cpu_seconds()
    items_after = work_items(metrics_url)
    threads = sorted(((after[tid] - before.get(tid, 0.0), tid) for tid in after), reverse=True)
    return {
        "namespaces": len(names),
        "fan_out_seconds": round(seconds, 2),
        "cpu_seconds": round(cpu_after - cpu_before, 2),
        "cpu_per_namespace_ms": round((cpu_after - cpu_before) / len(names) * 1000, 3),
        "work_items": {
            labels: count - items_before.get(labels, 0.0)
            for labels, count in items_after.items()
            if count != items_before.get(labels, 0.0)
        },
        # By thread id, which py-spy's stacks name ("thread (id): informer secrets").
        "threads_cpu_seconds": {tid: round(cpu, 2) for cpu, tid in threads if cpu > 0},
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.account", description=__doc__)
    parser.add_argument("--namespaces", type=int, default=1000)
    parser.add_argument("--output", type=Path, required=True, help="prefix of the files written")
    parser.add_argument("--no-profile", action="store_true", help="CPU from /proc only, no samplers")
    parser.add_argument("--repeat", type=int, default=1, help="warm fan-outs, the first profiled")
    args = parser.parse_args()
    names = [f"acct-{index:05d}" for index in range(args.namespaces)]
    with bench_cluster(None, CONCURRENCY) as cluster:
        kube = cluster.admin
        workload.create_source(kube)
        setup = time.perf_counter()
        workload.create_namespaces(kube, names, CONCURRENCY)
        wait_until(
            "default ServiceAccounts",
            lambda: workload.default_accounts_exist(kube, frozenset(names)),
        )
        print(f"setup {time.perf_counter() - setup:.1f} s", file=sys.stderr, flush=True)
        log = args.output.with_suffix(".log")
        metrics_port = free_port()
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        operator = OperatorProcess(
            cluster.operator_kubeconfig,
            OPERATOR_NAMESPACE,
            CONCURRENCY,
            log,
            OperatorRecord("account"),
            time.monotonic(),
            30.0,
            metrics_address=f"127.0.0.1:{metrics_port}",
        ).start()
        figures = []
        try:
            for repeat in range(args.repeat):
                profiled = repeat == 0 and not args.no_profile
                samplers = start_samplers(operator.pid, args.output) if profiled else []
                time.sleep(1.0 if profiled else 0.0)
                figures.append(measure(kube, operator, names, metrics_url))
                for sampler in samplers:
                    sampler.send_signal(signal.SIGINT)
                    sampler.wait(120)
                print(json.dumps({"profiled": profiled, **figures[-1]}), flush=True)
                workload.delete_credential(kube)
                wait_until("clean-up", lambda: workload.cleaned_up(kube))
        finally:
            operator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
