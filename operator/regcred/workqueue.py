"""A deduplicating, delay-capable work queue (the client-go workqueue contract).

A key queued while it is waiting is not queued twice; a key queued while it is
being processed runs once more after it is done, so no trigger is lost and no
key is processed by two workers at once.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Hashable

__all__ = ["WorkQueue"]


class WorkQueue:
    def __init__(self) -> None:
        self._ready: deque[Hashable] = deque()
        self._waiting: set[Hashable] = set()  # queued in _ready
        self._processing: set[Hashable] = set()
        self._dirty: set[Hashable] = set()  # re-added while processing
        self._delayed: list[tuple[float, int, Hashable]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._closed = False

    def add(self, key: Hashable, delay: float = 0.0) -> None:
        """Queue `key` now, or after `delay` seconds."""
        with self._cond:
            if self._closed:
                return
            if delay > 0:
                heapq.heappush(self._delayed, (time.monotonic() + delay, next(self._order), key))
            elif key in self._processing:
                self._dirty.add(key)
            elif key not in self._waiting:
                self._waiting.add(key)
                self._ready.append(key)
            self._cond.notify()

    def _promote_due(self) -> float | None:
        """Move delayed keys that are due into the ready queue; return seconds to the next one."""
        now = time.monotonic()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, key = heapq.heappop(self._delayed)
            if key in self._processing:
                self._dirty.add(key)
            elif key not in self._waiting:
                self._waiting.add(key)
                self._ready.append(key)
        return self._delayed[0][0] - now if self._delayed else None

    def get(self) -> Hashable | None:
        """The next key to process, blocking; None once the queue is shut down."""
        with self._cond:
            while True:
                if self._closed:
                    return None
                wait = self._promote_due()
                if self._ready:
                    key = self._ready.popleft()
                    self._waiting.discard(key)
                    self._processing.add(key)
                    return key
                self._cond.wait(wait)

    def done(self, key: Hashable) -> None:
        """Mark `key` processed; if it was re-added meanwhile, queue it again."""
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self._dirty.discard(key)
                if key not in self._waiting:
                    self._waiting.add(key)
                    self._ready.append(key)
                    self._cond.notify()

    def busy(self, predicate) -> bool:
        """Whether any queued or running key satisfies `predicate`."""
        with self._cond:
            return any(predicate(key) for key in itertools.chain(self._waiting, self._processing, self._dirty))

    def __len__(self) -> int:
        with self._cond:
            return len(self._ready) + len(self._delayed)

    def shutdown(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
