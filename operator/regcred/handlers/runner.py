"""Run the kopf operator in-process: in the foreground (`regcred run`) or in a thread (demo, tests)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import socket
import threading
import uuid
from typing import Any

import kopf
import prometheus_client

import regcred.handlers  # noqa: F401 - registers the handlers with kopf's default registry
from regcred import __version__
from regcred.config import OperatorConfig
from regcred.health import HealthServer, parse_address
from regcred.kube.client import ClientPolicy, KubeClient, load_api_client
from regcred.kube.lease import LeaderElector, LeaseTiming
from regcred.metrics import Metrics
from regcred.controller import Controller

__all__ = ["LeaderElection", "OperatorThread", "run_operator"]

log = logging.getLogger(__name__)


def _memo(
    config: OperatorConfig, kubeconfig: str | None, context: str | None, metrics: Metrics | None = None
) -> kopf.Memo:
    return kopf.Memo(config=config, kubeconfig=kubeconfig, context=context, metrics=metrics or Metrics())


@dataclasses.dataclass(frozen=True)
class LeaderElection:
    """Settings for running as one of several replicas; only the Lease holder acts."""

    lease_name: str = "regcred-operator"
    lease_duration: float = 15.0

    def timing(self) -> LeaseTiming:
        # client-go's proportions: renew within 2/3 of the lease, retry 7-8 times per lease.
        return LeaseTiming(
            lease_duration=self.lease_duration,
            renew_deadline=self.lease_duration * 2 / 3,
            retry_period=self.lease_duration / 7.5,
        )


def _identity() -> str:
    # Pod name (the hostname in Kubernetes) plus something unique per process start.
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"


def _kopf_identity(identity: str | None = None) -> Any:
    # Left to itself kopf names itself after getpass.getuser(), which raises in an image
    # that runs as a uid with no passwd entry (ours: 65532). kopf's Identity is a NewType
    # of str that kopf does not export.
    return identity or _identity()


def _user_agent(identity: str) -> str:
    # The identity tells the replicas apart in the API server's audit log.
    return f"regcred-operator/{__version__} ({identity})"


def _stop_on_lost_lease(lease_lost: threading.Event) -> None:
    """Stop kopf the way a kubelet would; a stop flag would leave kopf's waiter thread behind."""
    lease_lost.set()
    os.kill(os.getpid(), signal.SIGTERM)


def run_operator(
    config: OperatorConfig,
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    health_address: str | None = None,
    metrics_address: str | None = None,
    leader_election: LeaderElection | None = None,
) -> int:
    """Run until SIGINT/SIGTERM (exit 0), or until leader election ends by itself (exit 1):
    the Lease was lost, or the campaign failed.

    kopf runs standalone: kopf's peering pauses operators but is no leader
    election, so with `leader_election` kopf starts only once the Lease is ours.
    """
    memo = _memo(config, kubeconfig, context)
    metrics: Metrics = memo["metrics"]
    lease_lost = threading.Event()
    elector: LeaderElector | None = None

    def liveness() -> tuple[bool, str]:
        # A campaign that ended (failed, or lost the Lease) makes the process exit; should
        # the exit hang, the kubelet's liveness probe ends it.
        if elector is not None and not elector.alive():
            return False, "leader election has ended"
        if "controller" in memo:
            return memo["controller"].health()
        if elector is not None:
            return True, "standing by for the leader Lease"
        return True, "starting"

    def readiness() -> tuple[bool, str]:
        if "controller" in memo:
            return memo["controller"].readiness()
        # A standby is ready: it can take over, and rollouts must not wait for the leader to die.
        return elector is not None, "standing by" if elector is not None else "starting"

    servers = []
    if health_address:
        servers.append(HealthServer(health_address, {"/healthz": liveness, "/readyz": readiness}).start())
    if metrics_address:
        host, port = parse_address(metrics_address)
        prometheus_client.start_http_server(port, addr=host, registry=metrics.registry)

    identity = _identity()
    memo["client_policy"] = ClientPolicy(user_agent=_user_agent(identity))
    # A SIGTERM or SIGINT before kopf installs its own handlers (while standing by, or as
    # kopf starts) is kept, and handed to kopf once its startup has run (start_controller).
    stop_requested = memo["stop_requested"] = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop_requested.set())
    try:
        if leader_election is not None:
            timing = leader_election.timing()
            # The elector's own writes (to the Lease) are what confirm leadership: not gated.
            lease_policy = ClientPolicy(request_timeout=timing.request_timeout, user_agent=_user_agent(identity))
            candidate = LeaderElector(
                KubeClient(load_api_client(kubeconfig, context), policy=lease_policy),
                config.operator_namespace,
                leader_election.lease_name,
                identity,
                timing,
                on_stopped_leading=lambda: _stop_on_lost_lease(lease_lost),
            )
            memo["client_policy"] = dataclasses.replace(lease_policy, write_gate=candidate.confirmed)
            candidate.start()
            elector = candidate  # seen by liveness only once its campaign runs
            log.info("waiting for the leader Lease %s/%s", config.operator_namespace, leader_election.lease_name)
            while not elector.leading.wait(1.0):
                if not elector.alive() or lease_lost.is_set():
                    log.error("leader election ended while standing by; exiting")
                    return 1
                if stop_requested.is_set():
                    return 0
        metrics.leader.set(1)
        kopf.run(clusterwide=True, standalone=True, memo=memo, identity=_kopf_identity(identity))
    finally:
        metrics.leader.set(0)
        if elector is not None:
            elector.stop(release=not lease_lost.is_set())
        for server in servers:
            server.stop()
    return 1 if lease_lost.is_set() else 0


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
                    identity=_kopf_identity(),
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
