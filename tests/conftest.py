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
from pathlib import Path

import pytest
from gotools import go_tool
from kubernetes import client, config
from registryserver import RegistryServer, TokenRegistryServer, pinned_binaries
from testcluster import EXTERNAL_KUBECONFIG_ENV, Cluster, local_cluster

from regcred_dev.controlplane import ensure_binaries
from regcred_dev.kind.docker import engine_reachable
from regcred_dev.kind.operator_image import build_operator_image
from regcred_dev.release.tools import HELM

TEST_LABEL_KEY = "test.regcred.dev/case"
REPO = Path(__file__).resolve().parents[1]  # the checkout the image is built from


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
    with local_cluster() as started:
        yield started


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


@pytest.fixture(scope="session")
def registry() -> Iterator[RegistryServer]:
    """A registry on 127.0.0.1 with TLS and htpasswd auth (see `registryserver`)."""
    with RegistryServer(**pinned_binaries()) as server:
        yield server


@pytest.fixture(scope="session")
def token_registry() -> Iterator[TokenRegistryServer]:
    """The registry with token auth: Bearer tokens from a Python token service (see `registryserver`)."""
    with TokenRegistryServer(**pinned_binaries()) as server:
        yield server


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """A Docker engine that answers: a skip on a developer's machine, a failure on CI."""
    if engine_reachable():
        return
    message = "no Docker engine answers; hack/docker-up.sh installs and starts one"
    if os.environ.get("CI"):
        pytest.fail(message + "; on CI that is an error, not a skip", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def operator_image(docker_engine) -> str:
    """The operator's image built from this checkout (on a Python base made locally)."""
    return build_operator_image(REPO)


@pytest.fixture(scope="session")
def helm_bin() -> Path:
    """The pinned helm, built from source once (``$REGCRED_HELM`` names one to use instead)."""
    return go_tool(HELM)
