"""Liveness fails when the watches are stuck, not only when the process is dead.

A frozen kube-apiserver (SIGSTOP) keeps every TCP connection open and says nothing:
the watches hang without an error, exactly as behind a silently dropped connection.
"""

from __future__ import annotations

import os
import signal

from e2e.conftest import poll
from regcred.config import OperatorConfig
from regcred.kube.client import KubeClient, load_api_client
from regcred.controller import Controller

WATCH_SECONDS = 3.0


def test_liveness_fails_while_the_api_server_is_frozen_and_recovers_after(
    cluster, crd_installed, operator_namespace
) -> None:
    control_plane = cluster.require_local_control_plane()
    config = OperatorConfig(operator_namespace=operator_namespace, watch_seconds=WATCH_SECONDS)
    controller = Controller(KubeClient(load_api_client(str(cluster.kubeconfig))), config)
    controller.start()
    apiserver = control_plane.pids()["kube-apiserver"]
    try:
        poll(controller.caches_synced, what="caches")
        # Idle but healthy for longer than the silence limit: watches end and resume.
        limit = max(informer.silence_limit for informer in controller.informers)
        poll(lambda: controller.health()[0], what="healthy")
        os.kill(apiserver, signal.SIGSTOP)
        try:
            healthy, message = poll(
                lambda: (verdict := controller.health()) and not verdict[0] and verdict,
                timeout=limit + 15, what="liveness to fail",
            )
            assert "silent" in message
        finally:
            os.kill(apiserver, signal.SIGCONT)
        poll(lambda: controller.health()[0], timeout=limit + 15, what="liveness to recover")
    finally:
        controller.stop()
