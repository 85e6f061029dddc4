"""The kind tier: a real kind cluster of the locally built node image, for the session.

Without a reachable Docker engine these tests are skipped on a developer machine, but
on CI that is a failure (the `docker_engine` fixture): CI must run this tier.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kind_helpers import TRUSTED_CA_TEXT, TRUSTED_REGISTRY, Kubectl

from regcred_dev.kind import KindCluster, create_cluster, delete_cluster

# Another name keeps a run apart from one already using regcred-test on the same engine.
CLUSTER_NAME = os.environ.get("REGCRED_KIND_CLUSTER", "regcred-test")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.kind)


@pytest.fixture(scope="session")
def kind_cluster(docker_engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KindCluster]:
    """A kind cluster named regcred-test (or ``$REGCRED_KIND_CLUSTER``), created (or
    reused) once and deleted at the end."""
    folder = tmp_path_factory.mktemp("kind")
    # Any PEM file will do: the test checks it arrives where containerd looks for CAs.
    ca_file = folder / "ca.pem"
    ca_file.write_text(TRUSTED_CA_TEXT)
    cluster = create_cluster(CLUSTER_NAME, folder / "kubeconfig", {TRUSTED_REGISTRY: ca_file})
    try:
        yield cluster
    finally:
        delete_cluster(CLUSTER_NAME)


@pytest.fixture(scope="session")
def kubectl(kind_cluster: KindCluster) -> Kubectl:
    return Kubectl.pinned(kind_cluster.kubeconfig)


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    """A namespace private to one test, deleted (without waiting) afterwards."""
    name = f"kind-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    # Pods may be created only once the namespace's default ServiceAccount exists.
    kubectl("wait", "--for=create", "serviceaccount/default", "--namespace", name, "--timeout=60s")
    yield name
    kubectl("delete", "namespace", name, "--wait=false")
