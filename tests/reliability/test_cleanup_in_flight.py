"""Cleanup runs in the queue: a write in flight when cleanup is asked for is waited for, then undone.

The controller's ServiceAccount PATCH is held on its way out (as behind a stalled
connection) while every other request flows, so a cleanup that planned from its
caches alone could finish at once. Cleanup asked for meanwhile must not report done;
once the write lands, nothing the operator added may remain, nor may any write for
the credential follow.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from kubernetes import client

from e2e.conftest import poll
from e2e.objects import has_default_sa, pull_secret_names, replica, tenant_spec
from regcred.config import OperatorConfig
from regcred.controller import Controller
from regcred.kube.client import JsonObject, KubeClient, load_api_client
from regcred.models import FINALIZER

LATE_ACCOUNT = "late-builder"


class HoldAccountPatch(KubeClient):
    """A client that holds the armed ServiceAccount PATCH until released, then sends it."""

    def __init__(self, kubeconfig: str) -> None:
        super().__init__(load_api_client(kubeconfig))
        self.armed = threading.Event()
        self.holding = threading.Event()
        self.release = threading.Event()

    def request(self, method: str, path: str, **kwargs: Any) -> JsonObject:
        if method == "PATCH" and path.endswith(f"/serviceaccounts/{LATE_ACCOUNT}") and self.armed.is_set():
            self.armed.clear()
            self.holding.set()
            self.release.wait(60)
        return super().request(method, path, **kwargs)


def test_cleanup_waits_for_a_write_in_flight_and_leaves_nothing_behind(
    cluster, crd_installed, operator_namespace: str, sources
) -> None:
    tenant = f"inflight-{uuid.uuid4().hex[:6]}"
    namespace = f"{tenant}-a"
    cluster.core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace, labels={"tenant": tenant}))
    )
    password = sources.create({"password": "in-flight-pw"})
    spec = tenant_spec(tenant, password, serviceAccounts=["default", "late-*"])
    # kopf is not running here: the finalizer it would add is set at creation, as the
    # controller writes nothing for a credential without it.
    metadata = {"name": tenant, "finalizers": [FINALIZER]}
    body = {"apiVersion": "regcred.dev/v1alpha1", "kind": "RegistryCredential", "metadata": metadata, "spec": spec}
    created = cluster.custom.create_cluster_custom_object("regcred.dev", "v1alpha1", "registrycredentials", body)
    uid = created["metadata"]["uid"]

    kube = HoldAccountPatch(str(cluster.kubeconfig))
    config = OperatorConfig(operator_namespace=operator_namespace, resync_seconds=1.0, status_debounce_seconds=0.1)
    controller = Controller(kube, config)
    controller.start()
    try:
        poll(lambda: has_default_sa(cluster, namespace), what="the controller manager's default ServiceAccount")
        poll(lambda: tenant in pull_secret_names(cluster, namespace), what="the default ServiceAccount patched")
        kube.armed.set()
        cluster.core.create_namespaced_service_account(namespace, client.V1ServiceAccount(
            metadata=client.V1ObjectMeta(name=LATE_ACCOUNT)
        ))
        assert kube.holding.wait(30), "the controller never patched the new ServiceAccount"
        try:
            # The PATCH is in flight: cleanup must wait for it, not plan from caches without it.
            assert controller.clean_up(tenant, uid, timeout=3.0) is None
        finally:
            kube.release.set()
        # The same pass (asked again, as kopf does) ends once the held write has landed.
        assert controller.clean_up(tenant, uid, timeout=60.0) == []

        assert replica(cluster, namespace, tenant) is None
        for account in ("default", LATE_ACCOUNT):
            assert tenant not in pull_secret_names(cluster, namespace, account)
        # Cleanup is final: resyncs, events and status for this credential write nothing.
        writes = controller.stats.snapshot()
        cluster.core.create_namespaced_service_account(namespace, client.V1ServiceAccount(
            metadata=client.V1ObjectMeta(name=f"{LATE_ACCOUNT}-2")
        ))
        time.sleep(3 * config.resync_seconds)
        assert controller.stats.snapshot() == writes
        assert tenant not in pull_secret_names(cluster, namespace, f"{LATE_ACCOUNT}-2")
    finally:
        kube.release.set()
        controller.stop()
        cluster.custom.patch_cluster_custom_object(
            "regcred.dev", "v1alpha1", "registrycredentials", tenant, {"metadata": {"finalizers": None}}
        )
        cluster.custom.delete_cluster_custom_object("regcred.dev", "v1alpha1", "registrycredentials", tenant)
        cluster.core.delete_namespace(namespace)
