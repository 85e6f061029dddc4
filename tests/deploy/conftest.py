"""Fixtures for the installation manifests: rendering deploy/ with kubectl and the pinned helm."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from manifests import CHART, OPERATOR_NAMESPACE, Manifest, parse_documents, run_tool


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
