"""Fixtures of the hostile tests: one file per attack area, each against the real API server."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from e2e.conftest import CRD_NAMES, CRDS, Kubectl
from testcluster import EXTERNAL_KUBECONFIG_ENV, Cluster, local_cluster


@pytest.fixture(scope="module")
def kubectl(cluster, control_plane_bin: Path) -> Kubectl:
    """The pinned kubectl, as the cluster admin (`--as` impersonates from there), on the
    session's cluster or on a module's own."""
    return Kubectl(control_plane_bin / "kubectl", cluster.kubeconfig)


def own_control_plane(why: str) -> Callable[[], Iterator[Cluster]]:
    """A `cluster` fixture for a module whose operator must be the only one on its cluster:
    a local control plane of the module's own, thrown away whole; `why` is the skip reason
    against an external cluster."""

    @pytest.fixture(scope="module")
    def cluster() -> Iterator[Cluster]:
        if os.environ.get(EXTERNAL_KUBECONFIG_ENV):
            pytest.skip(why)
        with local_cluster() as started:
            yield started

    return cluster


def install_crds(kubectl: Kubectl) -> None:
    kubectl("apply", "--server-side", "--force-conflicts", "-k", str(CRDS))
    kubectl("wait", "--for=condition=Established", *(f"crd/{name}" for name in CRD_NAMES), "--timeout=60s")
