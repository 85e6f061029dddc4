"""The worker loop: take an item, process it, retry failures with the one backoff rule."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from regcred.controller.work import RetryBackoff, WorkItem, kind_of, log_fields
from regcred.errors import KubeError
from regcred.metrics import Metrics
from regcred.workqueue import WorkQueue

__all__ = ["start_workers"]

log = logging.getLogger(__name__)


def _work(
    queue: WorkQueue, process: Callable[[WorkItem], None], backoff: RetryBackoff, metrics: Metrics
) -> None:
    while True:
        item = queue.get()
        if item is None:
            return  # shut down
        assert isinstance(item, WorkItem)  # type: ignore[misc,arg-type]
        kind = kind_of(item)
        started = time.perf_counter()
        result = "success"
        try:
            process(item)
            backoff.forget(item)
        except Exception as error:
            result = "error"
            attempt, delay = backoff.next_delay(item)
            if isinstance(error, KubeError):
                log.warning("%s: %s; retry %d in %.1fs", item, error, attempt, delay, extra=log_fields(item))
            else:
                log.exception("%s failed unexpectedly; retry %d in %.1fs", item, attempt, delay, extra=log_fields(item))
            queue.add(item, delay=delay)
        finally:
            queue.done(item)
            metrics.reconciles.labels(kind=kind, result=result).inc()
            metrics.reconcile_seconds.labels(kind=kind).observe(time.perf_counter() - started)


def start_workers(
    queue: WorkQueue, role: str, count: int, process: Callable[[WorkItem], None], backoff: RetryBackoff,
    metrics: Metrics,
) -> list[threading.Thread]:
    workers = [
        threading.Thread(
            target=_work, args=(queue, process, backoff, metrics), name=f"{role}-{index}", daemon=True
        )
        for index in range(count)
    ]
    for worker in workers:
        worker.start()
    return workers
