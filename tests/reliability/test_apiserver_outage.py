"""kube-apiserver goes away mid-work, and watches expire: the operator recovers on its own.

The operator process is never restarted here: the same PID must reconnect, pick up
where it left off, and converge.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable

from harness import compact_etcd, managed_replicas, pull_secret_entries, replica_config
from kubernetes.client import ApiException

from e2e.conftest import poll
from e2e.objects import SERVER, tenant_spec

OUTAGE_NAMESPACES = 120
# Fewer workers stretch the fan-out to seconds, so the outage lands inside it.
SLOW_FAN_OUT = ("--concurrency", "2")
CONVERGE_TIMEOUT = 120.0
# How long the operator runs between two looks at its progress.
OPERATOR_STEP_SECONDS = 0.02
PROMPT_STOP_SECONDS = 10.0
# What the operator logs when a watch expired.
EXPIRED_WATCH_LOG = "resourceVersion expired, listing again"


def holding_password(cluster, credential: str, namespaces: list[str], password: str) -> int:
    """Namespaces whose replica carries `password`."""
    replicas = managed_replicas(cluster, credential)
    return sum(
        1
        for namespace in namespaces
        if (secret := replicas.get((namespace, credential))) is not None
        and replica_config(secret)["auths"][SERVER]["password"] == password
    )


def outage_during(cluster, operator_process, credential: str, progress: Callable[[], int], total: int) -> int:
    """Stop kube-apiserver once a fifth of the work is done, start it again.

    Returns the progress when it went down; checks the operator saw its writes fail.
    """
    control_plane = cluster.require_local_control_plane()
    log_offset = len(operator_process.log_text().encode())
    at_stop = frozen_at(operator_process, progress, total // 5)
    # Frozen at once: a graceful stop lets kube-apiserver serve open connections for a
    # while, long enough for the operator to finish its work before the outage.
    os.kill(control_plane.pids()["kube-apiserver"], signal.SIGSTOP)
    control_plane.stop_apiserver()
    operator_process.signal(signal.SIGCONT)
    time.sleep(2)  # a real outage, not just a reconnect
    control_plane.start_apiserver()
    # Any failed step of this credential's work (a namespace, its status) retried later.
    retried = [
        line for line in operator_process.log_text(log_offset).splitlines()
        if f"'{credential}'" in line and "retry" in line
    ]  # fmt: skip
    assert retried, "the outage hit none of the credential's work"
    return at_stop


def frozen_at(operator_process, progress: Callable[[], int], goal: int) -> int:
    """Let the operator run in short steps until `progress()` reaches `goal`; leave it stopped.

    Progress is counted while the operator is stopped, so however fast its work, it is
    caught a step past `goal` at most, never finished between two looks.
    """
    deadline = time.monotonic() + CONVERGE_TIMEOUT
    while True:
        operator_process.signal(signal.SIGSTOP)
        done = progress()
        if done >= goal:
            return done
        operator_process.signal(signal.SIGCONT)
        assert time.monotonic() < deadline, f"the work stayed at {done}, short of {goal}"
        time.sleep(OPERATOR_STEP_SECONDS)


def test_operator_rides_out_an_apiserver_outage_in_fan_out_and_rotation(
    cluster, make_namespace, credentials, sources, operator_process
):
    tenant = uuid.uuid4().hex[:8]
    namespaces = [make_namespace("out", labels={"tenant": tenant}) for _ in range(OUTAGE_NAMESPACES)]
    first, second = f"first-{uuid.uuid4().hex}", f"second-{uuid.uuid4().hex}"
    source = sources.create({"password": first})
    operator_process.start(*SLOW_FAN_OUT)
    pid = operator_process.pid

    name = credentials.create(tenant_spec(tenant, source))
    fan_out = outage_during(
        cluster, operator_process, name, lambda: holding_password(cluster, name, namespaces, first), OUTAGE_NAMESPACES
    )
    credentials.wait_ready(name, timeout=CONVERGE_TIMEOUT)

    sources.replace_data(source, {"password": second})
    rotation = outage_during(
        cluster, operator_process, name, lambda: holding_password(cluster, name, namespaces, second), OUTAGE_NAMESPACES
    )
    poll(
        lambda: holding_password(cluster, name, namespaces, second) == OUTAGE_NAMESPACES,
        timeout=CONVERGE_TIMEOUT, what="every replica rotated",
    )  # fmt: skip
    status = credentials.wait_ready(name, timeout=CONVERGE_TIMEOUT)

    print(f"outage at {fan_out}/{OUTAGE_NAMESPACES} of the fan-out, {rotation}/{OUTAGE_NAMESPACES} of the rotation")
    assert fan_out < OUTAGE_NAMESPACES and rotation < OUTAGE_NAMESPACES, "the outage came after the work"
    assert status["synced"] == f"{OUTAGE_NAMESPACES}/{OUTAGE_NAMESPACES}"
    assert operator_process.alive and operator_process.pid == pid and operator_process.starts == 1
    # The controller-manager, restarted with the API server, may create a namespace's
    # `default` ServiceAccount only now; the operator patches it once it appears.
    poll(
        lambda: all(entries == [name] for entries in default_account_entries(cluster, namespaces)),
        timeout=CONVERGE_TIMEOUT, what="every default ServiceAccount patched",
    )  # fmt: skip


def default_account_entries(cluster, namespaces: list[str]) -> list[list[str] | None]:
    """Each namespace's `default` ServiceAccount's pull secrets; None where it does not exist yet."""
    entries: list[list[str] | None] = []
    for namespace in namespaces:
        try:
            account = cluster.core.read_namespaced_service_account("default", namespace)
        except ApiException as error:
            if error.status != 404:
                raise
            entries.append(None)
            continue
        entries.append(pull_secret_entries(account))
    return entries


def test_expired_watches_relist_and_miss_no_change_made_meanwhile(
    cluster, make_namespace, credentials, sources, operator_process
):
    control_plane = cluster.require_local_control_plane()
    tenant = uuid.uuid4().hex[:8]
    leaving = make_namespace("gone", labels={"tenant": tenant})
    joining = make_namespace("join")
    old_password, new_password = f"old-{uuid.uuid4().hex}", f"new-{uuid.uuid4().hex}"
    source = sources.create({"password": old_password})
    operator_process.start()
    name = credentials.create(tenant_spec(tenant, source))
    credentials.wait_ready(name)

    # Freeze the operator, and end its watches by restarting kube-apiserver (a frozen
    # process would still find events the server sent meanwhile in its sockets). Then
    # change what it watches, and compact etcd past every resourceVersion it knows.
    operator_process.signal(signal.SIGSTOP)
    control_plane.restart_apiserver()
    cluster.core.patch_namespace(joining, {"metadata": {"labels": {"tenant": tenant}}})
    cluster.core.patch_namespace(leaving, {"metadata": {"labels": {"tenant": None}}})
    created = make_namespace("new", labels={"tenant": tenant})
    sources.replace_data(source, {"password": new_password})
    compact_etcd(control_plane)
    operator_process.signal(signal.SIGCONT)

    served = [joining, created]
    poll(
        lambda: holding_password(cluster, name, served, new_password) == len(served)
        and (leaving, name) not in managed_replicas(cluster, name),
        timeout=CONVERGE_TIMEOUT, what="the changes made while the watches were expired",
    )  # fmt: skip
    log = operator_process.log_text()
    assert EXPIRED_WATCH_LOG in log, "no watch expired: the test did not test what it says"
    assert operator_process.starts == 1


def test_sigterm_during_an_outage_stops_the_operator_promptly(cluster, operator_process):
    """A pod stopped while the API server is unreachable must not hang until SIGKILL."""
    control_plane = cluster.require_local_control_plane()
    operator_process.start()
    control_plane.stop_apiserver()
    try:
        time.sleep(1)  # every watch has failed and waits to retry
        started = time.monotonic()
        code = operator_process.stop(timeout=PROMPT_STOP_SECONDS)
    finally:
        control_plane.start_apiserver()
    assert code == 0, f"no clean exit within {PROMPT_STOP_SECONDS}s: {operator_process.log_text()[-2000:]}"
    print(f"stopped in {time.monotonic() - started:.1f}s during the outage")
