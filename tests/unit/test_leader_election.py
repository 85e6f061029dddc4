"""LeaderElector against an in-memory Lease API, with a clock that moves only on request."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from fakeclock import FakeClock

from regcred.errors import ConflictError, NotFoundError, UnavailableError
from regcred.kube.lease import LeaderElector, LeaseTiming

NAMESPACE = "regcred-system"
LEASE = "regcred-leader"
TIMING = LeaseTiming(lease_duration=15.0, renew_deadline=10.0, retry_period=0.01)
SETTLE_SECONDS = 5.0


class LeaseApi:
    """Stands in for KubeClient on Leases: GET, POST and PUT with the API server's
    resourceVersion preconditions. While `down`, every request fails; `while_writing`
    runs inside every PUT (e.g. to let time pass while the write is under way)."""

    def __init__(self) -> None:
        self.leases: dict[str, dict[str, Any]] = {}
        self.down = False
        self.while_writing: Callable[[], None] = lambda: None
        self.requests = 0
        self._version = 0
        self._changed = threading.Condition()

    def request(self, method: str, path: str, *, body: Any = None) -> dict[str, Any]:
        with self._changed:
            self.requests += 1
            self._changed.notify_all()
            if self.down:
                raise UnavailableError("the API server is down")
            if method == "POST":
                path = f"{path}/{body['metadata']['name']}"
                if path in self.leases:
                    raise ConflictError("the Lease exists")
                return self._store(path, body)
            if path not in self.leases:
                raise NotFoundError("no such Lease")
            if method == "GET":
                return copy.deepcopy(self.leases[path])
            assert method == "PUT"
            self.while_writing()
            stored = self.leases[path]["metadata"]["resourceVersion"]
            if body["metadata"]["resourceVersion"] != stored:
                raise ConflictError("the Lease changed since it was read")
            return self._store(path, body)

    def _store(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self._version += 1
        lease = copy.deepcopy(body)
        lease["metadata"]["resourceVersion"] = str(self._version)
        self.leases[path] = lease
        return copy.deepcopy(lease)

    def spec(self) -> dict[str, Any]:
        (lease,) = self.leases.values()
        return lease["spec"]

    def take(self, holder: str) -> None:
        """Another candidate writes the Lease as its own."""
        with self._changed:
            (path,) = self.leases
            spec = {**self.spec(), "holderIdentity": holder, "renewTime": "2030-01-01T00:00:00Z"}
            self._store(path, {**self.leases[path], "spec": spec})

    def wait_for_requests(self, count: int) -> None:
        """Block until `count` more requests have come: the elector's loop went round."""
        with self._changed:
            target = self.requests + count
            assert self._changed.wait_for(lambda: self.requests >= target, SETTLE_SECONDS)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def api() -> LeaseApi:
    return LeaseApi()


@pytest.fixture
def make_elector(api, clock):
    electors: list[LeaderElector] = []

    def make(identity: str, **callbacks: Any) -> LeaderElector:
        client: Any = api  # the one call an elector makes
        elector = LeaderElector(
            client, NAMESPACE, LEASE, identity, TIMING, clock=clock, **callbacks
        )
        electors.append(elector)
        return elector

    yield make
    for elector in electors:
        if elector.alive():
            elector.stop(release=False)


def test_a_free_lease_is_created_then_renewed_in_place(api, make_elector):
    leader = make_elector("a")
    assert leader.try_acquire_or_renew()
    created = dict(api.spec())
    assert created["holderIdentity"] == "a"
    assert created["leaseDurationSeconds"] == 15
    assert created["leaseTransitions"] == 0
    assert leader.try_acquire_or_renew()
    renewed = api.spec()
    assert renewed["holderIdentity"] == "a"
    assert renewed["acquireTime"] == created["acquireTime"]
    assert renewed["leaseTransitions"] == 0
    assert next(iter(api.leases.values()))["metadata"]["resourceVersion"] == "2"


def test_a_standby_takes_over_only_after_a_lease_duration_without_renewals(
    api, clock, make_elector
):
    leader, standby = make_elector("a"), make_elector("b")
    assert leader.try_acquire_or_renew()
    steps = [
        # (seconds to advance, whether the leader renews first, the standby wins)
        (0, False, False),
        (14, False, False),
        (1, True, False),  # the renewal restarts the standby's count
        (14, False, False),
        (1, False, True),
    ]
    for seconds, renews, wins in steps:
        clock.advance(seconds)
        if renews:
            assert leader.try_acquire_or_renew()
        assert standby.try_acquire_or_renew() is wins
    assert api.spec()["holderIdentity"] == "b"
    assert api.spec()["leaseTransitions"] == 1
    assert not leader.try_acquire_or_renew()


def test_a_released_lease_is_taken_at_once(api, make_elector):
    leader, standby = make_elector("a"), make_elector("b")
    leader.start()
    assert leader.leading.wait(SETTLE_SECONDS)
    leader.stop()
    assert not leader.leading.is_set()
    assert api.spec()["holderIdentity"] is None
    assert standby.try_acquire_or_renew()


def test_stop_without_release_keeps_the_lease(api, make_elector):
    leader = make_elector("a")
    leader.start()
    assert leader.leading.wait(SETTLE_SECONDS)
    leader.stop(release=False)
    assert api.spec()["holderIdentity"] == "a"
    assert not leader.confirmed(), "a stopped elector lets no write through"


@pytest.mark.parametrize(
    "lose",
    [
        pytest.param(lambda api: setattr(api, "down", True), id="the API server is down"),
        pytest.param(lambda api: api.take("b"), id="another candidate took the Lease"),
    ],
)
def test_a_leader_that_cannot_renew_for_the_renew_deadline_stops_leading(
    api, clock, make_elector, lose
):
    started, stopped = threading.Event(), threading.Event()
    leader = make_elector("a", on_started_leading=started.set, on_stopped_leading=stopped.set)
    leader.start()
    assert started.wait(SETTLE_SECONDS)
    lose(api)
    api.wait_for_requests(3)  # the loop saw the loss at least once
    clock.advance(TIMING.renew_deadline - 0.5)
    api.wait_for_requests(3)
    assert leader.leading.is_set() and not stopped.is_set()
    clock.advance(1.0)
    assert stopped.wait(SETTLE_SECONDS)
    assert not leader.leading.is_set()
    assert not leader.confirmed()
    leader.stop(release=False)  # joins the campaign, which ended by itself
    assert not leader.alive()


def test_the_write_gate_opens_with_a_renewal_and_closes_at_the_renew_deadline(api, clock, make_elector):
    leader = make_elector("a")
    assert not leader.confirmed(), "no Lease yet"
    leader.start()
    assert leader.leading.wait(SETTLE_SECONDS)
    assert leader.confirmed()
    api.down = True
    api.wait_for_requests(3)
    clock.advance(TIMING.renew_deadline - 0.5)
    api.wait_for_requests(3)
    assert leader.confirmed()
    clock.advance(0.5)
    # Closed at the deadline, before the elector even gives the Lease up (past the deadline).
    api.wait_for_requests(3)
    assert leader.leading.is_set() and not leader.confirmed()
    api.down = False
    api.wait_for_requests(3)
    assert leader.confirmed(), "a renewal within the deadline opens the gate again"


def test_the_write_gate_counts_from_the_start_of_the_renewal(api, clock, make_elector):
    leader = make_elector("a")
    leader.start()
    assert leader.leading.wait(SETTLE_SECONDS)
    # Each renewal succeeds, but lands a whole renew deadline after it was sent: by then the
    # standby may have been counting since long before, so it confirms nothing.
    api.while_writing = lambda: clock.advance(TIMING.renew_deadline)
    api.wait_for_requests(4)  # at least one slow renewal has completed
    assert leader.leading.is_set()
    assert not leader.confirmed()


def test_request_timeouts_end_a_gated_write_before_the_lease_can_expire():
    for timing in (LeaseTiming(), TIMING, LeaseTiming(3.0, 2.0, 0.4)):
        assert 0 < timing.request_timeout < timing.lease_duration - timing.renew_deadline
        assert timing.request_timeout < timing.renew_deadline


def campaign_ends(elector: LeaderElector) -> bool:
    deadline = time.monotonic() + SETTLE_SECONDS
    while elector.alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    return not elector.alive()


class Unexpected(Exception):
    """Anything but a KubeError: a bug, or an answer the elector cannot read."""


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(Unexpected("boom"), id="an unexpected exception"),
        pytest.param(ValueError("Expecting value: line 1 column 1 (char 0)"), id="a body that is not JSON"),
        pytest.param([], id="JSON that is not an object"),
    ],
)
def test_a_leader_whose_campaign_fails_unexpectedly_stops_leading_at_once(api, clock, make_elector, answer):
    started, stopped = threading.Event(), threading.Event()
    leader = make_elector("a", on_started_leading=started.set, on_stopped_leading=stopped.set)
    leader.start()
    assert started.wait(SETTLE_SECONDS)

    def failing(method: str, path: str, **kwargs: Any) -> Any:
        if isinstance(answer, Exception):
            raise answer
        return answer

    api.request = failing  # type: ignore[method-assign]
    # No time passes: leadership ends with the failure, not a renew deadline later.
    assert stopped.wait(SETTLE_SECONDS), "the failure must end leadership"
    assert not leader.leading.is_set()
    assert not leader.confirmed(), "the write gate closes with the failure"
    assert campaign_ends(leader), "the campaign ends by itself, for the runner to exit on"


def test_a_failing_stop_callback_still_leaves_leadership_ended(api, make_elector):
    def broken_callback() -> None:
        raise Unexpected("the callback failed")

    leader = make_elector("a", on_stopped_leading=broken_callback)
    leader.start()
    assert leader.leading.wait(SETTLE_SECONDS)

    def failing(method: str, path: str, **kwargs: Any) -> Any:
        raise Unexpected("boom")

    api.request = failing  # type: ignore[method-assign]
    assert campaign_ends(leader)
    assert not leader.leading.is_set() and not leader.confirmed()
