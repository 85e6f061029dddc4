"""Paths and helpers shared by the tests of deploy/ and deploy/chart/."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
CHART = DEPLOY / "chart"
SERVICEMONITOR_COMPONENT = DEPLOY / "components" / "servicemonitor"
POD_PULL_SECRETS_COMPONENT = DEPLOY / "components" / "pod-pull-secrets"
TENANT_BOUNDARY_COMPONENT = DEPLOY / "components" / "tenant-boundary"
PREFIX_ONLY_BOUNDARY_COMPONENT = DEPLOY / "components" / "tenant-boundary-prefix-only"
RESTART_STUCK_PODS_COMPONENT = DEPLOY / "components" / "restart-stuck-pods"
CRD_FILES = sorted((REPO / "crds").glob("regcred.dev_*.yaml"))
OPERATOR_NAMESPACE = "regcred-system"

Manifest = dict[str, Any]


def parse_documents(text: str) -> list[Manifest]:
    """The objects of a multi-document YAML stream, skipping empty documents."""
    return [document for document in yaml.safe_load_all(text) if document]


def run_tool(command: list[str], stdin: str | None = None) -> str:
    """Run a command, failing the test with its stderr; return stdout."""
    result = subprocess.run(
        command, input=stdin, capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed:\n{result.stderr}")
    return result.stdout


def identity(manifest: Manifest) -> tuple[str, str, str, str]:
    """What names an object in a cluster: kind, apiVersion, namespace, name."""
    meta = manifest["metadata"]
    return manifest["kind"], manifest["apiVersion"], meta.get("namespace", ""), meta["name"]


def by_identity(manifests: list[Manifest]) -> dict[tuple[str, str, str, str], Manifest]:
    return {identity(manifest): manifest for manifest in manifests}


def only(manifests: list[Manifest], kind: str) -> Manifest:
    """The single object of `kind`."""
    found = [manifest for manifest in manifests if manifest["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def component_overlay(folder: Path, *components: Path) -> Path:
    """Write, in `folder`, the overlay a user would: deploy/ plus its components, in order."""
    # kustomize accepts only relative paths to other kustomizations.
    (folder / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources: [{os.path.relpath(DEPLOY, folder)}]\n"
        f"components: [{', '.join(os.path.relpath(component, folder) for component in components)}]\n"
    )
    return folder
