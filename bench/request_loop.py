"""What one request costs a bare client: one thread, one small JSON merge patch after another.

    python -m bench.request_loop [--rounds 3]

run alone (on a fresh local control plane) prints, per round, the client CPU per
request of: this loop; the same patches through `KubeClient.request` in the Python
floor's process at 1 and at 16 threads; client-go at 1 and at 16 goroutines. Each
pair differs in one thing (the client path, or the threads).

The same loop in Python (urllib3's connection pool and `json`, nothing of the operator's)
and in Go (client-go through the Go floor's program at concurrency 1), in the same run, so
the floors and the operator can be read against what a request costs each language here.
Each response is decoded, as every client does. No watch runs during the loop.
"""

from __future__ import annotations

import argparse
import json
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from bench import go_floor
from bench.cluster import admin_client, merge_patch
from regcred.errors import ConflictError
from regcred.kube.client import MERGE_PATCH, KubeClient
from regcred_dev.controlplane import LocalControlPlane

__all__ = ["LOOP_REQUESTS", "LoopCost", "go_loop", "prepare", "python_loop"]

LOOP_REQUESTS = 2000
NAMESPACE = "default"
CONFIG_MAP = "bench-request-loop"
PATH = f"/api/v1/namespaces/{NAMESPACE}/configmaps/{CONFIG_MAP}"


@dataclass(frozen=True)
class LoopCost:
    seconds: float
    cpu_seconds: float  # the client's: the loop thread's (Python), the process's (Go)
    requests: int

    @property
    def cpu_per_request(self) -> float:
        return self.cpu_seconds / self.requests


def _patch(counter: int) -> dict[str, dict[str, str]]:
    # A new value each time: the API server writes it, as it writes the floors' patches.
    return {"data": {"counter": str(counter)}}


def prepare(kube: KubeClient) -> None:
    """The ConfigMap the loops patch."""
    try:
        kube.request(
            "POST",
            f"/api/v1/namespaces/{NAMESPACE}/configmaps",
            body={"metadata": {"name": CONFIG_MAP}, "data": {"counter": "0"}},
        )
    except ConflictError:
        merge_patch(kube, PATH, _patch(0))


def _pool(kubeconfig: Path) -> urllib3.HTTPSConnectionPool:
    """One kept-alive connection to the API server with the kubeconfig's client certificate."""
    configuration = k8s_client.Configuration()
    k8s_config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    url = urllib3.util.parse_url(configuration.host)
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file)
    headers = {"Content-Type": MERGE_PATCH, "Accept": "application/json"}
    if configuration.api_key.get("authorization"):
        headers["Authorization"] = configuration.api_key["authorization"]
    return urllib3.HTTPSConnectionPool(
        url.host, url.port, maxsize=1, ssl_context=context, headers=headers
    )


def python_loop(kubeconfig: Path, requests: int = LOOP_REQUESTS) -> LoopCost:
    """`requests` merge patches from this thread; its own CPU time, each answer decoded."""
    pool = _pool(kubeconfig)
    try:
        pool.urlopen("PATCH", PATH, body=json.dumps(_patch(-1)).encode())  # connect, untimed
        started, cpu_started = time.perf_counter(), time.thread_time()
        for counter in range(1, requests + 1):
            response = pool.urlopen("PATCH", PATH, body=json.dumps(_patch(counter)).encode())
            if response.status != 200:
                raise RuntimeError(f"the request loop got HTTP {response.status}")
            json.loads(response.data)
        return LoopCost(
            time.perf_counter() - started, time.thread_time() - cpu_started, requests
        )
    finally:
        pool.close()


def go_loop(binary: Path, kubeconfig: Path, requests: int = LOOP_REQUESTS) -> LoopCost:
    """The same patches from client-go, one goroutine; the Go process's CPU time."""
    results, _ = go_floor.run_plan(binary, kubeconfig, _patches(requests), (1,), 0)
    (result,) = results
    return LoopCost(result.seconds, result.cpu_seconds, result.requests)


def _patches(requests: int) -> go_floor.Plan:
    plan = go_floor.Plan()
    bodies = [plan.body(f"counter {parity}", _patch(parity)) for parity in (2, 3)]
    plan.scenario(
        "request loop",
        ([go_floor.patch_config_map(NAMESPACE, CONFIG_MAP, bodies[i % 2])] for i in range(requests)),
    )
    return plan


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.request_loop")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=LOOP_REQUESTS)
    args = parser.parse_args()
    binary = go_floor.ensure_binary().binary
    with LocalControlPlane() as control_plane:
        kubeconfig = control_plane.kubeconfig
        prepare(admin_client(kubeconfig, 16))
        for _ in range(args.rounds):
            costs = {"urllib3 + json, 1 thread": python_loop(kubeconfig, args.requests).cpu_per_request}
            python, _ = go_floor.run_program(
                go_floor.python_floor_program(), kubeconfig, _patches(args.requests), (1, 16), 0
            )
            go, _ = go_floor.run_plan(binary, kubeconfig, _patches(args.requests), (1, 16), 0)
            for name, results in (("KubeClient.request", python), ("client-go", go)):
                for result in results:
                    costs[f"{name}, {result.concurrency}"] = result.cpu_seconds / result.requests
            print(json.dumps({name: round(cost * 1000, 3) for name, cost in costs.items()}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
