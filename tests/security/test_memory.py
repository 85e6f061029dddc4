"""A namespace editor cannot push the operator out of memory.

An `edit` user may create any Secrets in its namespace, up to 1 MiB each: Secrets
labelled like replicas (the operator's replica watch is cluster-wide, by those labels)
and plain ones next to its TenantRegistryCredential (whose namespace's Secrets the
operator watches as sources). Before the fix both reached the operator whole: the
replica list held a page of them at once, the source cache kept every one decoded, and
a few hundred MiB of them had the leader killed at its memory limit on every start.

The operator runs as its own process (`regcred run`) on a control plane of this module's
own, and its resident memory is sampled from launch until it has settled: the start-up
peak with the tenant's Secrets must stay within a fifth of the same start without them.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from pathlib import Path

import psutil
import pytest
from kubernetes import client
from reliability.harness import READY_LOG_LINE, OperatorProcess

from e2e.conftest import Kubectl, poll
from e2e.objects import SERVER, replica
from e2e.tenancy import TenantWorld, refused
from regcred.models import API_GROUP, API_VERSION, TENANT_KIND, TENANT_PLURAL
from regcred.planning.plan import CREDENTIAL_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE
from security.conftest import install_crds, own_control_plane
from testcluster import Cluster

pytestmark = pytest.mark.e2e

MIB = 1 << 20
# A Secret's data may be up to 1 MiB.
SECRET_BYTES = 900 * 1024
# 47 MiB of data in all, half labelled like replicas, half plain.
SECRETS_OF_EACH_KIND = 27
# Long enough for the first passes after the caches filled (resync 5 s in the harness).
SETTLE_SECONDS = 12.0
SAMPLE_SECONDS = 0.05
START_TIMEOUT_SECONDS = 120.0
# The start-up peak with the tenant's Secrets, against the same start without them.
MAX_GROWTH = 0.20


cluster = own_control_plane("measures an operator process that must be the only operator: needs a local control plane")



@pytest.fixture(scope="module")
def operator_namespace(cluster: Cluster, kubectl: Kubectl) -> str:
    install_crds(kubectl)
    name = f"regcred-mem-{uuid.uuid4().hex[:8]}"
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


class PeakMemory:
    """The highest resident set size of one process, sampled until stopped."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self._process.memory_info().rss)
            except psutil.NoSuchProcess:
                return
            time.sleep(SAMPLE_SECONDS)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def start_up_peak(operator: OperatorProcess) -> int:
    """Start the operator, let it fill its caches and settle; its peak RSS from launch; stop it."""
    offset = operator.log_path.stat().st_size if operator.log_path.exists() else 0
    operator.start(wait=False)
    sampler = PeakMemory(operator.pid)
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while READY_LOG_LINE not in operator.log_text(offset) and operator.alive and time.monotonic() < deadline:
            time.sleep(0.1)
        assert READY_LOG_LINE in operator.log_text(offset), f"not started: {operator.log_text(offset)[-3000:]}"
        time.sleep(SETTLE_SECONDS)
        assert operator.alive, f"the operator died: {operator.log_text(offset)[-3000:]}"
    finally:
        peak = sampler.stop()
        operator.stop()
    return peak


def tenant_secret(name: str, index: int, labels: dict[str, str] | None) -> client.V1Secret:
    payload = index.to_bytes(4, "big") * (SECRET_BYTES // 4)
    return client.V1Secret(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        data={"blob": base64.b64encode(payload).decode()},
    )


def test_an_editors_secrets_do_not_raise_the_operators_start_up_peak(
    cluster: Cluster, operator_namespace: str, tmp_path: Path
) -> None:
    world = TenantWorld(cluster)
    home = f"mem-{uuid.uuid4().hex[:8]}"
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=home)))
    world.grant_edit(home)
    password = client.V1Secret(metadata=client.V1ObjectMeta(name="robot"), data={"password": "c2VjcmV0"})
    poll(lambda: refused(lambda: world.tenant.create_namespaced_secret(home, password)) is None,
         what="the tenant's edit rights to take effect")
    # The tenant's own credential (an edit user may create one): its namespace's Secrets
    # are then the operator's sources to watch.
    cluster.custom.create_namespaced_custom_object(API_GROUP, API_VERSION, home, TENANT_PLURAL, {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": TENANT_KIND,
        "metadata": {"name": "pull", "namespace": home},
        "spec": {"registries": [{"server": SERVER, "username": "robot", "passwordSecretRef": {"name": "robot"}}]},
    })
    operator = OperatorProcess(cluster.kubeconfig, operator_namespace, tmp_path / "operator.log")
    baseline = start_up_peak(operator)
    assert replica(cluster, home, "pull") is not None, "the tenant credential was not served"

    looks_like_a_replica = {MANAGED_BY_LABEL: MANAGED_BY_VALUE, CREDENTIAL_LABEL: "nobody"}
    for index in range(SECRETS_OF_EACH_KIND):
        world.tenant.create_namespaced_secret(home, tenant_secret(f"labelled-{index}", index, looks_like_a_replica))
        world.tenant.create_namespaced_secret(home, tenant_secret(f"plain-{index}", index, None))
    attacked = start_up_peak(operator)

    growth = attacked / baseline - 1
    assert growth <= MAX_GROWTH, (
        f"start-up peak RSS {attacked / MIB:.0f} MiB with {2 * SECRETS_OF_EACH_KIND * SECRET_BYTES / MIB:.0f} MiB "
        f"of the tenant's Secrets, against {baseline / MIB:.0f} MiB without them ({growth:+.0%})"
    )
