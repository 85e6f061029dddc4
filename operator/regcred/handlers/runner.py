"""Run the kopf operator in-process: in the foreground (`regcred run`) or in a thread (demo, tests)."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import kopf

import regcred.handlers  # noqa: F401 - registers the handlers with kopf's default registry
from regcred.config import OperatorConfig
from regcred.reconcile import Controller

__all__ = ["OperatorThread", "run_operator"]

log = logging.getLogger(__name__)


def _memo(config: OperatorConfig, kubeconfig: str | None, context: str | None) -> kopf.Memo:
    return kopf.Memo(config=config, kubeconfig=kubeconfig, context=context)


def run_operator(
    config: OperatorConfig,
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    liveness_endpoint: str | None = None,
) -> None:
    """Run until SIGINT/SIGTERM. Standalone: exactly-one-leader election is not kopf peering's job."""
    kopf.run(
        clusterwide=True,
        standalone=True,
        liveness_endpoint=liveness_endpoint,
        memo=_memo(config, kubeconfig, context),
    )


class OperatorThread:
    """The operator on its own event loop in a daemon thread; `controller` is reachable for inspection."""

    def __init__(self, config: OperatorConfig, kubeconfig: str | None = None, context: str | None = None) -> None:
        self.memo = _memo(config, kubeconfig, context)
        self._stop_flag = threading.Event()
        self._ready_flag = threading.Event()
        self._thread = threading.Thread(target=self._run, name="regcred-operator", daemon=True)
        self.error: BaseException | None = None

    @property
    def controller(self) -> Controller:
        return self.memo["controller"]

    def _run(self) -> None:
        try:
            asyncio.run(
                kopf.operator(
                    clusterwide=True,
                    standalone=True,
                    memo=self.memo,
                    stop_flag=self._stop_flag,
                    ready_flag=self._ready_flag,
                )
            )
        except BaseException as error:  # reported to the owner by start()/stop()
            self.error = error
            log.exception("operator thread failed")

    def start(self, timeout: float = 120.0) -> OperatorThread:
        """Start and wait until the controller's caches are filled and kopf is serving."""
        self._thread.start()
        if not self._ready_flag.wait(timeout) or "controller" not in self.memo:
            raise RuntimeError(f"operator did not become ready: {self.error!r}")
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop_flag.set()
        self._thread.join(timeout)

    def __enter__(self) -> OperatorThread:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()
