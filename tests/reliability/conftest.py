"""Fault trials: the operator as a separate process, on a control plane of their own.

These tests SIGKILL the operator, stop kube-apiserver and compact etcd, so they get
a local control plane that no other test shares: the end-to-end tests' in-process
operator (which lives for the whole session) must not act on these credentials, and
nobody else's watches should see the faults. Against an external cluster
(``REGCRED_TEST_KUBECONFIG``) they are skipped, as they could not own it.

`OperatorProcess` runs ``regcred run`` exactly as a user would; its stderr (text or
JSON logs, across restarts) is kept in a file the tests search.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import OperatorProcess
from kubernetes import client

from e2e.conftest import CRD_NAMES, CRDS, Credentials, Kubectl, SourceSecrets
from testcluster import EXTERNAL_KUBECONFIG_ENV, Cluster, local_cluster

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """A control plane for the fault trials alone (overrides the shared one in this folder)."""
    if os.environ.get(EXTERNAL_KUBECONFIG_ENV):
        pytest.skip(
            "fault trials stop kube-apiserver, compact etcd and must be the only operator: "
            "they need a local control plane of their own"
        )
    with local_cluster() as started:
        yield started


@pytest.fixture(scope="session")
def kubectl(cluster: Cluster, control_plane_bin: Path) -> Kubectl:
    return Kubectl(control_plane_bin / "kubectl", cluster.kubeconfig)


@pytest.fixture(scope="session")
def crd_installed(kubectl: Kubectl) -> None:
    kubectl("apply", "--server-side", "--force-conflicts", "-k", str(CRDS))
    kubectl("wait", "--for=condition=Established", *(f"crd/{name}" for name in CRD_NAMES), "--timeout=60s")


@pytest.fixture(scope="session")
def operator_namespace(cluster: Cluster) -> str:
    """Where source Secrets live; the control plane goes away with the session."""
    name = f"regcred-rel-{uuid.uuid4().hex[:8]}"
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


@pytest.fixture
def operator_process(cluster: Cluster, crd_installed, operator_namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    """An operator process for this test, not yet started; stopped afterwards."""
    process = OperatorProcess(cluster.kubeconfig, operator_namespace, tmp_path / "operator.log")
    yield process
    process.stop()


@pytest.fixture
def credentials(cluster: Cluster, operator_process: OperatorProcess) -> Iterator[Credentials]:
    """RegistryCredentials of this test, deleted afterwards by a running operator (the finalizer)."""
    factory = Credentials(cluster, uuid.uuid4().hex[:8])
    yield factory
    if [name for name in factory.created if factory.exists(name)] and not operator_process.alive:
        operator_process.start()
    for name in factory.created:
        factory.delete(name)


@pytest.fixture
def sources(cluster: Cluster, operator_namespace: str) -> Iterator[SourceSecrets]:
    factory = SourceSecrets(cluster, operator_namespace)
    yield factory
    factory.cleanup()


