"""kopf wiring, and nothing else: `kopf run -m regcred.handlers` or `regcred run`.

RegistryCredentials get kopf's change handlers, finalizer and resync timer.
Namespaces, ServiceAccounts and Secrets are watched by the controller's own
informers (label-selected for Secrets), which write nothing onto them and give
the controller a complete cache before its first plan.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from regcred.config import OperatorConfig, config_from_env
from regcred.kube.client import ClientPolicy, KubeClient, connection_params, load_api_client
from regcred.metrics import Metrics
from regcred.models import API_GROUP, API_VERSION, PLURAL
from regcred.reconcile import Controller

__all__ = ["FINALIZER"]

FINALIZER = f"{API_GROUP}/cleanup"
RESOURCE = (API_GROUP, API_VERSION, PLURAL)
# kopf fixes a timer's interval at import; the timer ticks often and the controller
# decides from its configured resync period whether a full pass is due.
RESYNC_TICK_SECONDS = 5.0

log = logging.getLogger(__name__)


@kopf.on.login()
def login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    """Log kopf in exactly as the controller does (explicit kubeconfig, $KUBECONFIG, or in-cluster)."""
    api_client = load_api_client(memo.get("kubeconfig"), memo.get("context"))
    return kopf.ConnectionInfo(**connection_params(api_client))


@kopf.on.startup()
def start_controller(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=API_GROUP, key="last-handled-configuration"
    )
    settings.posting.enabled = False  # we post our own Events, on transitions only
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.inactivity_timeout = 360
    config: OperatorConfig = memo.get("config") or config_from_env()
    metrics: Metrics = memo.get("metrics") or Metrics()
    client = KubeClient(
        load_api_client(memo.get("kubeconfig"), memo.get("context")),
        on_error=lambda verb: metrics.api_errors.labels(verb=verb).inc(),
        # Set by the runner: request timeouts, the leader's write gate, the user agent.
        policy=memo.get("client_policy") or ClientPolicy(),
    )
    controller = Controller(client, config, metrics)
    controller.start()
    memo["controller"] = controller


@kopf.on.cleanup()
def stop_controller(memo: kopf.Memo, **_: Any) -> None:
    controller: Controller | None = memo.get("controller")
    if controller is not None:
        controller.stop()


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE)
def credential_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo["controller"].credential_changed(_plain(body))


@kopf.on.delete(*RESOURCE)
def credential_deleted(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    failures = memo["controller"].cleanup(_plain(body))
    if failures:
        raise kopf.TemporaryError(
            f"cleanup incomplete in {len(failures)} namespaces: {'; '.join(failures[:5])}", delay=5
        )


@kopf.timer(*RESOURCE, interval=RESYNC_TICK_SECONDS, initial_delay=RESYNC_TICK_SECONDS)
def resync(name: str, memo: kopf.Memo, **_: Any) -> None:
    memo["controller"].resync_if_due(name)


def _plain(body: kopf.Body) -> dict[str, Any]:
    """kopf's live view as the plain dict the controller works with."""
    return {key: body[key] for key in body}
