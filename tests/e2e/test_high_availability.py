"""Two operator processes, one Lease: exactly one acts; the standby takes over when the leader
dies, and a leader cut off from the API server writes nothing once the standby has taken over."""

from __future__ import annotations

import datetime
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from httpproxy import HttpProxy
from objects import pull_secret_names, replica, tenant_spec
from tcpproxy import TcpProxy

from regcred_dev.controlplane.runner import free_port

LEASE_SECONDS = 3.0
BACKLOG_NAMESPACES = 20
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


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


@dataclass
class OperatorLauncher:
    """Starts `regcred run --leader-elect` processes that campaign for one Lease."""

    cluster: Any
    namespace: str
    lease: str
    logs: Path
    processes: list[OperatorProcess]

    def __call__(self, kubeconfig: Path | None = None) -> OperatorProcess:
        health, metrics = free_port(), free_port()
        log = open(self.logs / f"operator-{len(self.processes)}.log", "w")  # noqa: SIM115 - closed with the process
        popen = subprocess.Popen(
            [sys.executable, "-m", "regcred.cli", "run", "--kubeconfig", str(kubeconfig or self.cluster.kubeconfig),
             "--operator-namespace", self.namespace, "--leader-elect",
             "--lease-name", self.lease,
             "--lease-duration", str(LEASE_SECONDS), "--resync-seconds", "30",
             "--health-address", f"127.0.0.1:{health}", "--metrics-address", f"127.0.0.1:{metrics}"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        process = OperatorProcess(popen, health, metrics)
        self.processes.append(process)
        return process

    def holder(self) -> str | None:
        """The Lease's holder identity as the API server has it."""
        return self.cluster.coordination.read_namespaced_lease(self.lease, self.namespace).spec.holder_identity


@pytest.fixture
def launch_operator(cluster, operator_namespace, running_operator, credentials, sources, make_namespace, tmp_path):
    """Operator processes on demand; the in-process test operator is paused meanwhile.

    Set up after (so torn down before) the object fixtures: the test's objects are
    cleaned up by the in-process operator alone, once the processes are gone.
    """
    running_operator.stop()
    launcher = OperatorLauncher(cluster, operator_namespace, f"regcred-ha-{uuid.uuid4().hex[:6]}", tmp_path, [])
    yield launcher
    for process in launcher.processes:
        process.stop()


@pytest.fixture
def operator_pair(launch_operator):
    """Two processes started together: either may win the Lease."""
    return [launch_operator(), launch_operator()]


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


def proxied_kubeconfig(kubeconfig: Path, port: int, path: Path) -> Path:
    """A copy of `kubeconfig` whose clusters are reached through 127.0.0.1:`port`.

    The serving certificate names 127.0.0.1, so TLS verifies through the proxy unchanged.
    """
    document = yaml.safe_load(kubeconfig.read_text())
    for entry in document["clusters"]:
        entry["cluster"]["server"] = f"https://127.0.0.1:{port}"
    path.write_text(yaml.safe_dump(document))
    return path


def audit_time(event: dict[str, Any]) -> datetime.datetime:
    return datetime.datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00"))


def audited_writes(audit_log: Path, accept: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """The write requests in the API server's audit log that `accept` picks, in order received."""
    events = (json.loads(line) for line in audit_log.read_text().splitlines() if line)
    return sorted((e for e in events if e["verb"] in WRITE_VERBS and accept(e)), key=audit_time)


def test_a_leader_cut_off_from_the_api_server_writes_nothing_after_the_standby_took_over(
    cluster, launch_operator, make_namespace, credentials, sources, wait_for, tmp_path
):
    control_plane = cluster.require_local_control_plane()
    api_server = urllib.parse.urlsplit(control_plane.server)
    with TcpProxy((api_server.hostname, api_server.port)) as proxy:
        old = launch_operator(proxied_kubeconfig(cluster.kubeconfig, proxy.port, tmp_path / "proxied.kubeconfig"))
        wait_for(old.leading, timeout=30, what="the proxied operator to lead")
        old_identity = launch_operator.holder()
        new = launch_operator()
        wait_for(lambda: http_get(f"http://127.0.0.1:{new.health}/readyz")[0] == 200, what="standby ready")

        tenant = uuid.uuid4().hex[:8]
        namespaces = [make_namespace("fence", labels={"tenant": tenant}) for _ in range(2)]
        name = credentials.create(tenant_spec(tenant, sources.create({"password": f"fence-{uuid.uuid4().hex}"})))
        credentials.wait_ready(name)
        for ns in namespaces:
            wait_for(lambda ns=ns: pull_secret_names(cluster, ns) == [name], what=f"{ns} patched")
        assert new.metric("regcred_writes_total") == 0, "the standby must not act"

        # Stall while the leader is busy, so that it has writes under way and queued for retry.
        backlog = [make_namespace("fence", labels={"tenant": tenant}) for _ in range(BACKLOG_NAMESPACES)]
        proxy.stall()
        wait_for(new.leading, timeout=LEASE_SECONDS * 10, what="the standby to take over")
        new_identity = launch_operator.holder()
        assert new_identity not in (None, old_identity)
        late = make_namespace("fence", labels={"tenant": tenant})
        for ns in [*backlog, late]:
            wait_for(lambda ns=ns: replica(cluster, ns, name) is not None and pull_secret_names(cluster, ns) == [name],
                     timeout=30, what=f"the new leader to serve {ns}")

        # The partition ends: the old leader finds the Lease gone and stops, writing nothing.
        proxy.resume()
        wait_for(lambda: old.popen.poll() is not None, timeout=60, what="the old leader to exit")
        assert old.popen.returncode == 1, "exit status of a lost Lease"

    def by(identity: str) -> Callable[[dict[str, Any]], bool]:
        return lambda event: f"({identity})" in event.get("userAgent", "")

    audit_log = control_plane.audit_log
    takeover = audit_time(next(
        event for event in audited_writes(audit_log, by(new_identity))
        if (event.get("objectRef") or {}).get("resource") == "leases"
        and (event.get("responseStatus") or {}).get("code") in (200, 201)
    ))
    old_writes = audited_writes(audit_log, by(old_identity))
    assert any(event["objectRef"]["resource"] == "secrets" for event in old_writes), "the old leader acted"
    late_writes = [
        f'{event["verb"]} {event["requestURI"]} at {event["requestReceivedTimestamp"]}'
        for event in old_writes if audit_time(event) >= takeover
    ]
    assert late_writes == [], f"the old leader wrote after the takeover at {takeover}"


@pytest.mark.parametrize(
    ("role", "answer"),
    [
        pytest.param("leader", b"<html>502 Bad Gateway</html>", id="leader, not JSON"),
        pytest.param("leader", b"[]", id="leader, JSON that is not a Lease"),
        pytest.param("standby", b"[]", id="standby, JSON that is not a Lease"),
    ],
)
def test_a_replica_whose_lease_answers_are_garbage_ends_its_campaign_and_exits(
    cluster, launch_operator, wait_for, tmp_path, role, answer
):
    with HttpProxy(cluster.kubeconfig) as proxy:
        if role == "standby":
            leader = launch_operator()
            wait_for(leader.leading, timeout=30, what="the direct operator to lead")
        proxied = launch_operator(proxy.kubeconfig(cluster.kubeconfig, tmp_path / "proxied.kubeconfig"))
        if role == "leader":
            wait_for(proxied.leading, timeout=30, what="the proxied operator to lead")
        else:
            wait_for(lambda: http_get(f"http://127.0.0.1:{proxied.health}/readyz")[0] == 200, what="standby ready")
        assert http_get(f"http://127.0.0.1:{proxied.health}/healthz")[0] == 200
        lease_path = f"/leases/{launch_operator.lease}"
        # Every other request (the controller's, kopf's) still reaches the API server.
        proxy.answer_for(lambda _method, path: path.split("?", 1)[0].endswith(lease_path), answer)
        # Not left with a dead campaign (a leader: its gate shut, its probes green): it exits.
        wait_for(lambda: proxied.popen.poll() is not None, timeout=LEASE_SECONDS * 10, what="the replica to exit")
    assert proxied.popen.returncode == 1, "exit status of a campaign that ended by itself"
