"""The Python floor: the Go floor's plan, run by a Python client in a process of its own.

    python -m bench.python_floor --kubeconfig PATH --plan PLAN.json

It reads the plan the Go floor reads (`go_floor.Plan`: bodies, scenarios of per-namespace
writes, concurrencies) and prints the same JSON lines: per timed scenario its wall
seconds, this process's CPU seconds (user + system, `getrusage`) and its requests. The
writes go through the operator's own `KubeClient.request`, one thread per concurrent
item, as the operator's workers send them.

A process of its own, like the Go floor's: the harness's watches (which time
convergence) decode every event of the floor's writes, and in the harness's process
they would take the interpreter lock from the floor's threads and charge their
switches to them.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.cluster import admin_client, merge_patch
from regcred.kube.client import KubeClient

__all__ = ["main"]


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _write(kube: KubeClient, bodies: dict[str, Any], write: dict[str, str]) -> None:
    namespace, op = write["namespace"], write["op"]
    secrets = f"/api/v1/namespaces/{namespace}/secrets"
    if op == "create-secret":
        kube.request("POST", secrets, body=bodies[write["body"]])
    elif op == "update-secret":
        body = bodies[write["body"]]
        kube.request("PUT", f"{secrets}/{body['metadata']['name']}", body=body)
    elif op == "delete-secret":
        kube.request("DELETE", f"{secrets}/{write['name']}")
    elif op == "patch-account":
        path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{write['name']}"
        merge_patch(kube, path, bodies[write["body"]])
    elif op == "patch-configmap":
        path = f"/api/v1/namespaces/{namespace}/configmaps/{write['name']}"
        merge_patch(kube, path, bodies[write["body"]])
    else:
        raise ValueError(f"unknown op {op!r}")


def run(kubeconfig: Path, plan: dict[str, Any]) -> None:
    bodies = plan["bodies"]
    for concurrency in plan["concurrency"]:
        kube = admin_client(kubeconfig, concurrency)
        for scenario in plan["scenarios"]:

            def item(writes: list[dict[str, str]]) -> None:
                for write in writes:
                    _write(kube, bodies, write)

            cpu_started, started = _cpu_seconds(), time.perf_counter()
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                for _ in pool.map(item, scenario["items"]):
                    pass  # iterating re-raises the first failure
            seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_started
            if scenario["timed"]:
                requests = sum(len(writes) for writes in scenario["items"])
                record = {
                    "concurrency": concurrency,
                    "scenario": scenario["name"],
                    "seconds": seconds,
                    "cpuSeconds": cpu,
                    "requests": requests,
                }
                print(json.dumps(record), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.python_floor", description=__doc__)
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--plan", type=Path, required=True)
    args = parser.parse_args()
    print(json.dumps({"startupSeconds": 0.0}), flush=True)
    run(args.kubeconfig, json.loads(args.plan.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
