"""The test cluster behaves like a real one in every way the operator relies on."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest
from kubernetes import client

from regcred_dev.controlplane import KUBERNETES_VERSION

if TYPE_CHECKING:
    from conftest import Cluster, NamespaceFactory

pytestmark = pytest.mark.e2e

T = TypeVar("T")
POLL_TIMEOUT_SECONDS = 60.0


def wait_for(description: str, probe: Callable[[], T | None]) -> T:
    """Poll ``probe`` until it returns something other than None; fail after a timeout."""
    deadline = time.monotonic() + POLL_TIMEOUT_SECONDS
    while True:
        result = probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {POLL_TIMEOUT_SECONDS:.0f} s waiting for {description}")
        time.sleep(0.2)


def read_or_none(read: Callable[[], T]) -> T | None:
    """Return ``read()``, or None while the object does not exist (404)."""
    try:
        return read()
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise


def test_new_namespace_gets_default_service_account(
    cluster: Cluster, make_namespace: NamespaceFactory
) -> None:
    namespace = make_namespace()

    account = wait_for(
        "the default ServiceAccount",
        lambda: read_or_none(
            lambda: cluster.core.read_namespaced_service_account("default", namespace)
        ),
    )

    assert account.metadata.namespace == namespace


def test_pod_gets_image_pull_secrets_of_its_service_account(
    cluster: Cluster, make_namespace: NamespaceFactory
) -> None:
    namespace = make_namespace()
    account = wait_for(
        "the default ServiceAccount",
        lambda: read_or_none(
            lambda: cluster.core.read_namespaced_service_account("default", namespace)
        ),
    )
    account.image_pull_secrets = [client.V1LocalObjectReference(name="registry-login")]
    cluster.core.replace_namespaced_service_account("default", namespace, account)

    pod = cluster.core.create_namespaced_pod(
        namespace,
        client.V1Pod(
            metadata=client.V1ObjectMeta(name="probe"),
            spec=client.V1PodSpec(
                containers=[client.V1Container(name="app", image="registry.invalid/app:1")]
            ),
        ),
    )

    # The ServiceAccount admission plugin filled these in; the Pod listed none.
    assert pod.spec.service_account_name == "default"
    assert [ref.name for ref in pod.spec.image_pull_secrets] == ["registry-login"]


def test_unprivileged_user_is_forbidden_to_read_secrets(
    cluster: Cluster, make_namespace: NamespaceFactory
) -> None:
    namespace = make_namespace()
    cluster.core.list_namespaced_secret(namespace)  # the admin may

    with cluster.new_api_client() as nobody:
        nobody.set_default_header("Impersonate-User", f"nobody-{uuid.uuid4().hex[:8]}")
        with pytest.raises(client.ApiException) as raised:
            client.CoreV1Api(nobody).list_namespaced_secret(namespace)

    assert raised.value.status == 403


def test_deleted_namespace_finalizes_and_disappears(
    cluster: Cluster, make_namespace: NamespaceFactory
) -> None:
    namespace = make_namespace()
    cluster.core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="content"))
    )

    cluster.core.delete_namespace(namespace)

    # The namespace controller must empty it before the finalizer lets it go.
    wait_for(
        f"namespace {namespace} to disappear",
        lambda: (
            True if read_or_none(lambda: cluster.core.read_namespace(namespace)) is None else None
        ),
    )


def test_data_survives_apiserver_restart(
    cluster: Cluster, make_namespace: NamespaceFactory
) -> None:
    control_plane = cluster.require_local_control_plane()
    namespace = make_namespace()
    cluster.core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="kept"), data={"key": "value"}),
    )
    old_pid = control_plane.pids()["kube-apiserver"]

    control_plane.restart_apiserver()

    assert control_plane.pids()["kube-apiserver"] != old_pid
    with cluster.new_api_client() as fresh:
        kept = client.CoreV1Api(fresh).read_namespaced_config_map("kept", namespace)
    assert kept.data == {"key": "value"}


def test_kubectl_reports_pinned_version(cluster: Cluster, control_plane_bin: Path) -> None:
    completed = subprocess.run(
        [
            str(control_plane_bin / "kubectl"),
            "--kubeconfig",
            str(cluster.kubeconfig),
            "version",
            "--output=json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    versions = json.loads(completed.stdout)

    assert versions["clientVersion"]["gitVersion"] == KUBERNETES_VERSION
    if cluster.is_local:
        assert versions["serverVersion"]["gitVersion"] == KUBERNETES_VERSION
