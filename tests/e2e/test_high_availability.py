"""Two operator processes, one Lease: exactly one acts; the standby takes over when the leader dies."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass

import pytest
from objects import pull_secret_names, replica, tenant_spec

from regcred.controlplane.runner import free_port

LEASE_SECONDS = 3.0


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


@dataclass
class OperatorProcess:
    popen: subprocess.Popen
    health: int
    metrics: int

    def metric(self, name: str) -> float:
        """The sum of a metric's samples; `name` may carry a full label set to pick one."""
        _, text = http_get(f"http://127.0.0.1:{self.metrics}/metrics")
        total = 0.0
        pattern = re.escape(name) if "{" in name else rf"{name}(\{{.*\}})?"
        for line in text.splitlines():
            if re.match(rf"{pattern} ", line):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def leading(self) -> bool:
        return self.popen.poll() is None and self.metric("regcred_leader") == 1.0

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@pytest.fixture
def operator_pair(cluster, operator_namespace, running_operator, credentials, sources, make_namespace, tmp_path):
    """Two `regcred run --leader-elect` processes; the in-process test operator is paused meanwhile.

    Set up after (so torn down before) the object fixtures: the test's objects are
    cleaned up by the in-process operator alone, once both processes are gone.
    """
    running_operator.stop()
    lease = f"regcred-ha-{uuid.uuid4().hex[:6]}"
    processes = []
    for index in range(2):
        health, metrics = free_port(), free_port()
        log = open(tmp_path / f"operator-{index}.log", "w")  # noqa: SIM115 - closed with the process
        popen = subprocess.Popen(
            [sys.executable, "-m", "regcred.cli", "run", "--kubeconfig", str(cluster.kubeconfig),
             "--operator-namespace", operator_namespace, "--leader-elect",
             "--lease-name", lease,
             "--lease-duration", str(LEASE_SECONDS), "--resync-seconds", "30",
             "--health-address", f"127.0.0.1:{health}", "--metrics-address", f"127.0.0.1:{metrics}"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        processes.append(OperatorProcess(popen, health, metrics))
    yield processes
    for process in processes:
        process.stop()


def test_one_leader_acts_and_the_standby_takes_over_without_duplicate_work(
    cluster, operator_pair, make_namespace, credentials, sources, wait_for
):
    first, second = operator_pair
    wait_for(lambda: first.leading() or second.leading(), timeout=30, what="a leader")
    leader, standby = (first, second) if first.leading() else (second, first)
    assert not standby.leading()
    # Both become ready: the standby can take over, so rollouts need not wait for it.
    wait_for(lambda: http_get(f"http://127.0.0.1:{standby.health}/readyz")[0] == 200, what="standby ready")
    wait_for(lambda: http_get(f"http://127.0.0.1:{leader.health}/readyz")[0] == 200, what="leader ready")
    assert http_get(f"http://127.0.0.1:{leader.health}/healthz")[0] == 200

    tenant = uuid.uuid4().hex[:8]
    namespaces = [make_namespace("ha", labels={"tenant": tenant}) for _ in range(3)]
    password = f"ha-{uuid.uuid4().hex}"
    source = sources.create({"password": password})
    name = credentials.create(tenant_spec(tenant, source))
    credentials.wait_ready(name)
    for ns in namespaces:
        wait_for(lambda ns=ns: pull_secret_names(cluster, ns) == [name], what=f"{ns} patched")
    assert standby.metric("regcred_writes_total") == 0, "the standby must not act"
    wait_for(lambda: leader.metric(f'regcred_namespaces{{credential="{name}",state="synced"}}') == 3,
             what="the synced count in /metrics")
    _, exposition = http_get(f"http://127.0.0.1:{leader.metrics}/metrics")
    assert password not in exposition

    leader.popen.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    wait_for(standby.leading, timeout=LEASE_SECONDS * 5, what="takeover")
    takeover = time.monotonic() - killed_at
    late = make_namespace("ha", labels={"tenant": tenant})
    wait_for(lambda: replica(cluster, late, name) is not None and pull_secret_names(cluster, late) == [name],
             timeout=30, what="the new leader to serve a new namespace")
    time.sleep(1)
    # Converged namespaces cost the new leader nothing: one create and one patch for the new one.
    assert standby.metric("regcred_writes_total") == 2
    # The bound is wait_for's timeout above; the figure is for the record.
    print(f"takeover after SIGKILL of the leader: {takeover:.1f}s (lease {LEASE_SECONDS}s)")


def test_a_leader_stopping_gracefully_hands_over_at_once(operator_pair, wait_for):
    first, second = operator_pair
    wait_for(lambda: first.leading() or second.leading(), timeout=30, what="a leader")
    leader, standby = (first, second) if first.leading() else (second, first)
    stopped_at = time.monotonic()
    leader.stop()
    assert leader.popen.returncode == 0
    wait_for(standby.leading, timeout=LEASE_SECONDS * 5, what="takeover")
    handover = time.monotonic() - stopped_at
    print(f"handover after SIGTERM of the leader: {handover:.1f}s (lease {LEASE_SECONDS}s)")
    # Released, not expired: the standby need not wait out the lease.
    assert handover < LEASE_SECONDS * 2
