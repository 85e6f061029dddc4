"""kopf wiring, and nothing else: `kopf run -m regcred.handlers` or `regcred run`.

kopf's one job is deletion: it holds the `regcred.dev/cleanup` finalizer on every
RegistryCredential and TenantRegistryCredential, and when one is deleted its delete
handler hands the cleanup to the controller and removes the finalizer once that is
done. Around that job kopf logs in (as the controller does), runs the controller
from startup to cleanup, and turns SIGTERM and SIGINT into a clean stop.

Changes are not kopf's: the controller's own informers (RegistryCredentials included)
see every change and queue the work, so kopf has no create, update or resume
handler. With none, kopf would still write a diff base annotation on every change
that nothing reads; `NoDiffBase` keeps it nowhere. docs/architecture.md ("What kopf
does") lists every request kopf sends.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

import kopf

from regcred.config import OperatorConfig, config_from_env
from regcred.kube.client import ClientPolicy, KubeClient, connection_params, load_api_client
from regcred.metrics import Metrics
from regcred.kube.paths import credential_key
from regcred.models import API_GROUP, API_VERSION, FINALIZER, PLURAL, TENANT_PLURAL
from regcred.controller import Controller

__all__ = ["FINALIZER", "NoDiffBase"]

RESOURCE = (API_GROUP, API_VERSION, PLURAL)
TENANT_RESOURCE = (API_GROUP, API_VERSION, TENANT_PLURAL)
# Connections kept for the informers' watches, beside one per worker: the fixed
# collections, the source namespaces, and room for tenants' namespaces.
WATCH_CONNECTIONS = 32
# How long one delete handler call waits for the queue to report cleanup done; kopf
# calls again (without an error logged) until it is.
CLEANUP_WAIT_SECONDS = 10.0

log = logging.getLogger(__name__)


class NoDiffBase(kopf.DiffBaseStorage):
    """kopf's record of the last handled spec, kept nowhere: only change handlers read it, and we have none.

    Without one, every event is a creation to kopf, which with no creation handler
    does nothing; deletion is told apart by the deletion timestamp, never by the diff.
    """

    def fetch(self, *, body: kopf.Body) -> None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        pass


@kopf.on.login()
def login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    """Log kopf in exactly as the controller does (explicit kubeconfig, $KUBECONFIG, or in-cluster)."""
    api_client = load_api_client(memo.get("kubeconfig"), memo.get("context"))
    return kopf.ConnectionInfo(**connection_params(api_client))


@kopf.on.startup()
def start_controller(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.posting.enabled = False  # we post our own Events, on transitions only
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.inactivity_timeout = 360
    config: OperatorConfig = memo.get("config") or config_from_env()
    metrics: Metrics = memo.get("metrics") or Metrics()
    client = KubeClient(
        # Every worker may write at once while each informer holds its watch open.
        load_api_client(
            memo.get("kubeconfig"), memo.get("context"), connections=config.concurrency + WATCH_CONNECTIONS
        ),
        on_error=lambda verb: metrics.api_errors.labels(verb=verb).inc(),
        # Set by the runner: request timeouts, the leader's write gate, the user agent.
        policy=memo.get("client_policy") or ClientPolicy(),
    )
    controller = Controller(client, config, metrics)
    controller.start()
    memo["controller"] = controller
    stop_requested = memo.get("stop_requested")
    if stop_requested is not None and stop_requested.is_set():
        # Asked to stop before kopf's signal handlers were in place: kopf has them now.
        os.kill(os.getpid(), signal.SIGTERM)


@kopf.on.cleanup()
def stop_controller(memo: kopf.Memo, **_: Any) -> None:
    controller: Controller | None = memo.get("controller")
    if controller is not None:
        controller.stop()


@kopf.on.delete(*RESOURCE)
@kopf.on.delete(*TENANT_RESOURCE)
def credential_deleted(name: str, namespace: str | None, uid: str, memo: kopf.Memo, **_: Any) -> None:
    key = credential_key(namespace, name)
    failures = memo["controller"].clean_up(key, uid, timeout=CLEANUP_WAIT_SECONDS)
    if failures is None:
        raise kopf.TemporaryError("cleanup is still running", delay=1)
    if failures:
        raise kopf.TemporaryError(
            f"cleanup incomplete in {len(failures)} namespaces: {'; '.join(failures[:5])}", delay=5
        )
