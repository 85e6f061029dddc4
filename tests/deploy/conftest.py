"""Fixtures for the installation manifests: rendering deploy/ with kubectl and a pinned helm.

helm is built from source through the Go module proxy, like the control-plane binaries:
a wrapper module whose committed go.sum (helm-module/go.sum) checks every download,
built once into ``<regcred cache>/tools/helm-<version>/helm``. ``$REGCRED_HELM`` names
a helm binary to use instead.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from manifests import CHART, OPERATOR_NAMESPACE, Manifest, parse_documents, run_tool

from regcred.controlplane.build import cache_root

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
    configured = os.environ.get("REGCRED_HELM")
    if configured:
        return Path(configured)
    folder = cache_root() / "tools" / f"helm-{HELM_VERSION}"
    binary = folder / "helm"
    if binary.is_file():
        return binary
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent test run may be building it already
        if not binary.is_file():
            build_helm(folder, binary)
    return binary


def build_helm(folder: Path, binary: Path) -> None:
    """Build helm into `binary`; the binary appears only once the build succeeded."""
    if shutil.which("go") is None:
        pytest.fail("building helm needs the Go toolchain on PATH (or set REGCRED_HELM)")
    module = folder / "module"
    module.mkdir(exist_ok=True)
    (module / "go.mod").write_text(
        f"module regcred.dev/tools/helm\n\ngo 1.26.0\n\nrequire helm.sh/helm/v4 {HELM_VERSION}\n"
    )
    shutil.copyfile(HELM_MODULE_SUM, module / "go.sum")
    partial = folder / "helm.partial"
    env = {**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": "local"}
    command = [
        "go",
        "build",
        "-mod=mod",
        "-trimpath",
        # Stamp the version, as helm's release build does; `helm version` says v0.0.0 otherwise.
        "-ldflags",
        f"-s -w -X helm.sh/helm/v4/internal/version.version={HELM_VERSION}",
        "-o",
        str(partial),
        "helm.sh/helm/v4/cmd/helm",
    ]
    with (folder / "build.log").open("w") as log:
        result = subprocess.run(command, cwd=module, env=env, stdout=log, stderr=log, check=False)
    if result.returncode != 0:
        pytest.fail(f"building helm {HELM_VERSION} failed; see {folder / 'build.log'}")
    partial.rename(binary)


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
