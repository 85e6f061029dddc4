"""Fixtures of the hostile tests: one file per attack area, each against the real API server."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2e.conftest import Kubectl


@pytest.fixture(scope="session")
def kubectl(cluster, control_plane_bin: Path) -> Kubectl:
    """The pinned kubectl, as the cluster admin (`--as` impersonates from there)."""
    return Kubectl(control_plane_bin / "kubectl", cluster.kubeconfig)
