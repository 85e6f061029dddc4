"""Fixtures shared by every test tier.

`cluster` gives a real Kubernetes API server: a local control plane started on first
use (so unit tests never pay for it), or the cluster of ``$REGCRED_TEST_KUBECONFIG``.
`make_namespace` hands out unique, labelled namespaces and deletes them afterwards, so
tests never see each other's objects.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kubernetes import client, config

from regcred.controlplane import LocalControlPlane, ensure_binaries

EXTERNAL_KUBECONFIG_ENV = "REGCRED_TEST_KUBECONFIG"
TEST_LABEL_KEY = "test.regcred.dev/case"


@dataclass
class Cluster:
    """A Kubernetes API server for tests, with admin clients."""

    kubeconfig: Path
    api_client: client.ApiClient
    # None when the tests run against an external cluster.
    control_plane: LocalControlPlane | None
    core: client.CoreV1Api = field(init=False)
    rbac: client.RbacAuthorizationV1Api = field(init=False)
    custom: client.CustomObjectsApi = field(init=False)
    apiext: client.ApiextensionsV1Api = field(init=False)
    coordination: client.CoordinationV1Api = field(init=False)

    def __post_init__(self) -> None:
        self.core = client.CoreV1Api(self.api_client)
        self.rbac = client.RbacAuthorizationV1Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)
        self.apiext = client.ApiextensionsV1Api(self.api_client)
        self.coordination = client.CoordinationV1Api(self.api_client)

    @property
    def is_local(self) -> bool:
        """True when the tests started this cluster themselves."""
        return self.control_plane is not None

    def require_local_control_plane(self) -> LocalControlPlane:
        """Return the local control plane, or skip the test on an external cluster."""
        if self.control_plane is None:
            pytest.skip(
                f"needs the local control plane (it restarts kube-apiserver); "
                f"{EXTERNAL_KUBECONFIG_ENV} points at an external cluster"
            )
        return self.control_plane

    def new_api_client(self) -> client.ApiClient:
        """Return a separate admin ApiClient (e.g. to add impersonation headers)."""
        return config.new_client_from_config(config_file=str(self.kubeconfig))


@pytest.fixture(scope="session")
def control_plane_bin() -> Path:
    """The folder with the pinned etcd, kube-apiserver, kube-controller-manager, kubectl."""
    return ensure_binaries()


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """A real API server for the whole session, started on the first test that asks.

    The local control plane builds its binaries first if they are not cached yet.
    """
    external = os.environ.get(EXTERNAL_KUBECONFIG_ENV)
    if external:
        kubeconfig = Path(external)
        api_client = config.new_client_from_config(config_file=str(kubeconfig))
        with api_client:
            yield Cluster(kubeconfig=kubeconfig, api_client=api_client, control_plane=None)
        return
    with LocalControlPlane() as control_plane:
        api_client = config.new_client_from_config(config_file=str(control_plane.kubeconfig))
        with api_client:
            yield Cluster(
                kubeconfig=control_plane.kubeconfig,
                api_client=api_client,
                control_plane=control_plane,
            )


class NamespaceFactory:
    """Creates uniquely named namespaces carrying this test's label; deletes them later."""

    def __init__(self, cluster: Cluster, test_id: str) -> None:
        self._cluster = cluster
        self.label = {TEST_LABEL_KEY: test_id}
        self.label_selector = f"{TEST_LABEL_KEY}={test_id}"
        self.created: list[str] = []

    def __call__(self, prefix: str = "t", labels: dict[str, str] | None = None) -> str:
        """Create a namespace ``<prefix>-<random>`` with the test label plus ``labels``."""
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        body = client.V1Namespace(
            metadata=client.V1ObjectMeta(name=name, labels={**(labels or {}), **self.label})
        )
        self._cluster.core.create_namespace(body)
        self.created.append(name)
        return name

    def delete_all(self) -> None:
        """Ask for deletion of every namespace made here; finalization runs in background."""
        for name in self.created:
            try:
                self._cluster.core.delete_namespace(name)
            except client.ApiException as error:
                if error.status != 404:
                    raise


@pytest.fixture
def make_namespace(cluster: Cluster) -> Iterator[NamespaceFactory]:
    """Factory for namespaces private to the current test (see `NamespaceFactory`)."""
    factory = NamespaceFactory(cluster, test_id=uuid.uuid4().hex[:12])
    yield factory
    factory.delete_all()
