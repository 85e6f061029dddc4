"""The WorkQueue contract, step by step on a fake clock: no test sleeps."""

from __future__ import annotations

import threading

import pytest
from fakeclock import FakeClock

from regcred.workqueue import WorkQueue


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(clock: FakeClock) -> WorkQueue:
    return WorkQueue(clock=clock)


def drain(queue: WorkQueue) -> list[object]:
    """Every key due now, in the order handed out, each marked done at once."""
    taken = []
    while (key := queue.get(block=False)) is not None:
        taken.append(key)
        queue.done(key)
    return taken


@pytest.mark.parametrize(
    ("adds", "expected"),
    [
        (["a"], ["a"]),
        (["a", "a", "a"], ["a"]),
        (["a", "b", "a", "c", "b"], ["a", "b", "c"]),
        (
            [("ns", "cred", "x"), ("ns", "cred", "x"), ("full", "cred")],
            [("ns", "cred", "x"), ("full", "cred")],
        ),
    ],
)
def test_immediate_adds_of_a_queued_key_are_coalesced_in_first_come_order(queue, adds, expected):
    for key in adds:
        queue.add(key)
    assert len(queue) == len(expected)
    assert drain(queue) == expected


@pytest.mark.parametrize(
    ("delays", "due_after"),
    [
        ([5.0], 5.0),
        ([5.0, 3.0], 3.0),  # a sooner add brings the key forward
        ([3.0, 5.0], 3.0),  # a later add does not push it back
        ([9.0, 2.0, 4.0, 2.5], 2.0),
    ],
)
def test_a_delayed_key_waits_once_and_the_earliest_due_time_wins(queue, clock, delays, due_after):
    for delay in delays:
        queue.add("a", delay=delay)
    assert len(queue) == 1
    clock.advance(due_after - 0.001)
    assert drain(queue) == []
    clock.advance(0.001)
    assert drain(queue) == ["a"]
    clock.advance(max(delays))
    assert drain(queue) == []  # the replaced due times left nothing behind
    assert len(queue) == 0


def test_delayed_keys_come_due_in_time_order(queue, clock):
    queue.add("late", delay=3.0)
    queue.add("soon", delay=1.0)
    queue.add("middle", delay=2.0)
    clock.advance(3.0)
    assert drain(queue) == ["soon", "middle", "late"]


def test_a_delayed_key_that_comes_due_while_queued_is_coalesced(queue, clock):
    queue.add("a", delay=1.0)
    queue.add("a")
    clock.advance(1.0)
    assert drain(queue) == ["a"]


def test_an_immediate_add_neither_cancels_nor_satisfies_a_pending_delayed_add(queue, clock):
    queue.add("a", delay=5.0)
    queue.add("a")
    assert drain(queue) == ["a"]
    assert len(queue) == 1  # still waiting for its delay
    clock.advance(5.0)
    assert drain(queue) == ["a"]


def test_a_key_being_processed_is_not_handed_to_a_second_worker(queue):
    queue.add("a")
    queue.add("b")
    assert queue.get(block=False) == "a"
    queue.add("a")
    assert queue.get(block=False) == "b"
    assert queue.get(block=False) is None  # "a" waits for the first worker's done
    queue.done("a")
    assert queue.get(block=False) == "a"


@pytest.mark.parametrize("readds", [1, 3])
def test_a_key_readded_while_processing_runs_once_more_after_done(queue, readds):
    queue.add("a")
    assert queue.get(block=False) == "a"
    for _ in range(readds):
        queue.add("a")
    assert queue.busy(lambda key: key == "a")
    queue.done("a")
    assert drain(queue) == ["a"]
    assert not queue.busy(lambda key: True)


def test_a_delay_that_ends_while_the_key_is_processed_runs_it_once_more_after_done(queue, clock):
    queue.add("a")
    assert queue.get(block=False) == "a"
    queue.add("a", delay=1.0)  # a retry scheduled by the worker itself
    clock.advance(1.0)
    assert queue.get(block=False) is None
    queue.done("a")
    assert drain(queue) == ["a"]


def test_busy_sees_queued_and_running_keys_but_not_delayed_ones(queue):
    queue.add(("ns", "cred", "x"), delay=1.0)
    assert not queue.busy(lambda key: True)
    queue.add(("status", "cred"))
    assert queue.busy(lambda key: key[0] == "status")
    assert queue.get(block=False) == ("status", "cred")
    assert queue.busy(lambda key: key[0] == "status")
    queue.done(("status", "cred"))
    assert not queue.busy(lambda key: True)


def test_a_worker_blocked_in_get_wakes_for_a_new_key():
    queue = WorkQueue()
    taken: list[object] = []
    worker = threading.Thread(target=lambda: taken.append(queue.get()))
    worker.start()
    queue.add("a")
    worker.join(timeout=5)
    assert taken == ["a"]


def test_shutdown_releases_blocked_workers_and_ignores_later_adds(queue):
    results: list[object] = []
    workers = [threading.Thread(target=lambda: results.append(queue.get())) for _ in range(3)]
    for worker in workers:
        worker.start()
    queue.shutdown()
    for worker in workers:
        worker.join(timeout=5)
    assert results == [None, None, None]
    queue.add("a")
    queue.add("b", delay=1.0)
    assert len(queue) == 0
    assert queue.get() is None
