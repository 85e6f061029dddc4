"""A deduplicating, delay-capable work queue with client-go's workqueue semantics.

The contract, key by key:

- An immediate `add` of a key that is already queued and not yet taken does nothing.
- An immediate `add` of a key that a worker is processing queues it once more, to be
  handed out only after that worker calls `done`: no trigger is lost and no key is
  processed by two workers at once.
- A delayed `add` is remembered at most once per key: a key already waiting with a
  delay keeps the earlier of the two due times (client-go's `AddAfter`).
- Delayed and immediate adds are independent: an immediate add neither cancels nor
  satisfies a pending delayed add of the same key. When the delay is over, the key is
  added as above, so it is coalesced with the key if it is then still queued, or
  queued once more if it is then being processed.
- After `shutdown`, adds are ignored and `get` returns None.

There is no rate limiting here: callers that retry choose their own backoff delay.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable

__all__ = ["WorkQueue"]

# (due time, insertion order as the tie-break, key)
_Timer = tuple[float, int, Hashable]


class WorkQueue:
    """Hands keys to workers: `get` a key, process it, then call `done` with it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._ready: deque[Hashable] = deque()
        # Keys that need processing: in _ready, or re-added while being processed.
        self._dirty: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        # The live timer of each delayed key; _timers may also hold timers an earlier
        # due time replaced, which are skipped when they come up.
        self._delayed: dict[Hashable, _Timer] = {}
        self._timers: list[_Timer] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._closed = False

    def add(self, key: Hashable, delay: float = 0.0) -> None:
        """Queue `key` now, or once `delay` seconds have passed (see the module docstring)."""
        with self._cond:
            if self._closed:
                return
            if delay <= 0:
                self._add_now(key)
                return
            due = self._clock() + delay
            pending = self._delayed.get(key)
            if pending is not None and pending[0] <= due:
                return
            timer = (due, next(self._order), key)
            self._delayed[key] = timer
            heapq.heappush(self._timers, timer)
            self._cond.notify()  # a waiting worker may now have to wake up sooner

    def _add_now(self, key: Hashable) -> None:
        if key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._ready.append(key)
            self._cond.notify()

    def _promote_due(self) -> float | None:
        """Queue the delayed keys that are due; return the seconds until the next one."""
        now = self._clock()
        while self._timers and self._timers[0][0] <= now:
            timer = heapq.heappop(self._timers)
            key = timer[2]
            if self._delayed.get(key) is timer:
                del self._delayed[key]
                self._add_now(key)
        return self._timers[0][0] - now if self._timers else None

    def get(self, block: bool = True) -> Hashable | None:
        """The next key to process, now marked as processing until `done`.

        Blocks until a key is due; None once the queue is shut down, or at once when
        `block` is false and no key is due.
        """
        with self._cond:
            while not self._closed:
                wait = self._promote_due()
                if self._ready:
                    key = self._ready.popleft()
                    self._dirty.discard(key)
                    self._processing.add(key)
                    return key
                if not block:
                    return None
                self._cond.wait(wait)
            return None

    def done(self, key: Hashable) -> None:
        """Mark `key` processed; if it was added meanwhile, queue it again."""
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self._ready.append(key)
                self._cond.notify()

    def busy(self, predicate: Callable[[Hashable], bool]) -> bool:
        """Whether any queued or running key satisfies `predicate` (delayed keys do not count)."""
        with self._cond:
            return any(predicate(key) for key in itertools.chain(self._dirty, self._processing))

    def __len__(self) -> int:
        """Keys queued and keys waiting for their delay, each counted once per kind."""
        with self._cond:
            return len(self._ready) + len(self._delayed)

    def shutdown(self) -> None:
        """Stop handing out keys: blocked and later `get` calls return None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
