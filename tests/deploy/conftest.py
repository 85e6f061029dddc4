"""Fixtures for the installation manifests: rendering deploy/ with kubectl and a pinned helm.

helm is built from source through the Go module proxy by `gotools`, like the
control-plane binaries: a wrapper module whose committed go.sum (helm-module/go.sum)
checks every download, built once into ``<regcred cache>/tools/helm-<version>/helm``.
``$REGCRED_HELM`` names a helm binary to use instead.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from gotools import ensure_go_tool
from manifests import CHART, OPERATOR_NAMESPACE, Manifest, parse_documents, run_tool

HELM_VERSION = "v4.3.1"
HELM_MODULE_SUM = Path(__file__).with_name("helm-module") / "go.sum"

Render = Callable[..., list[Manifest]]


@pytest.fixture(scope="session")
def kustomize(control_plane_bin: Path) -> Render:
    """`kustomize(folder)`: the objects `kubectl kustomize folder` renders."""

    def render(folder: Path) -> list[Manifest]:
        return parse_documents(
            run_tool([str(control_plane_bin / "kubectl"), "kustomize", str(folder)])
        )

    return render


@pytest.fixture(scope="session")
def helm_bin() -> Path:
    """The pinned helm binary, built on first use."""
    return ensure_go_tool(
        "helm",
        module="helm.sh/helm/v4",
        version=HELM_VERSION,
        package="helm.sh/helm/v4/cmd/helm",
        sum_file=HELM_MODULE_SUM,
        env_override="REGCRED_HELM",
        # Stamp the version, as helm's release build does; `helm version` says v0.0.0 otherwise.
        ldflags=f"-s -w -X helm.sh/helm/v4/internal/version.version={HELM_VERSION}",
    )


@pytest.fixture(scope="session")
def helm_template(helm_bin: Path) -> Render:
    """`helm_template(*flags)`: the chart's objects, CRDs included, in regcred-system."""

    def render(*flags: str) -> list[Manifest]:
        command = [
            str(helm_bin),
            "template",
            "regcred-operator",
            str(CHART),
            "--namespace",
            OPERATOR_NAMESPACE,
            "--include-crds",
            *flags,
        ]
        return parse_documents(run_tool(command))

    return render
