"""Leader election against the real coordination.k8s.io Lease API."""

from __future__ import annotations

import threading
import uuid

import pytest

from regcred.kube.client import KubeClient, load_api_client
from regcred.kube.lease import LeaderElector, LeaseTiming

FAST = LeaseTiming(lease_duration=2.0, renew_deadline=1.4, retry_period=0.25)


@pytest.fixture
def elector_factory(cluster, operator_namespace):
    lease = f"lease-test-{uuid.uuid4().hex[:6]}"
    electors: list[LeaderElector] = []

    def make(identity: str, **callbacks) -> LeaderElector:
        client = KubeClient(load_api_client(str(cluster.kubeconfig)))
        elector = LeaderElector(client, operator_namespace, lease, identity, FAST, **callbacks)
        electors.append(elector)
        return elector

    make.lease = lease
    yield make
    for elector in electors:
        elector.stop()
    cluster.coordination.delete_namespaced_lease(lease, operator_namespace)


def test_of_many_candidates_exactly_one_leads(elector_factory, wait_for):
    electors = [elector_factory(f"candidate-{index}") for index in range(4)]
    for elector in electors:
        elector.start()
    wait_for(lambda: any(e.leading.is_set() for e in electors), what="a leader")
    for _ in range(8):  # several retry periods: nobody else may win meanwhile
        assert sum(e.leading.is_set() for e in electors) == 1
        threading.Event().wait(FAST.retry_period)


def test_a_leader_that_cannot_renew_steps_down_and_a_standby_takes_over(
    cluster, operator_namespace, elector_factory, wait_for
):
    lost = threading.Event()
    leader = elector_factory("first", on_stopped_leading=lost.set)
    leader.start()
    wait_for(leader.leading.is_set, what="the first leader")
    standby = elector_factory("second")
    standby.start()
    # Another holder writes the Lease, as after a partition healed: the leader must not fight it.
    cluster.coordination.patch_namespaced_lease(
        elector_factory.lease, operator_namespace, {"spec": {"holderIdentity": "intruder"}}
    )
    wait_for(lost.is_set, timeout=10, what="the first leader to step down")
    assert not leader.leading.is_set()
    # The intruder never renews, so after a lease duration the standby takes the Lease.
    wait_for(standby.leading.is_set, timeout=10, what="the standby to lead")
    holder = cluster.coordination.read_namespaced_lease(elector_factory.lease, operator_namespace)
    assert holder.spec.holder_identity == "second"
    assert holder.spec.lease_transitions >= 1
