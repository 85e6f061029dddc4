"""The README's quick starts, run as written against the local control plane.

The local control plane has no kubelet, so no operator Pod can run here: the operator
runs as a process, configured as the README's install blocks configure it (namespace
regcred-system, the tenant label of the tenant-boundary component). The install blocks
themselves run on the kind tier (tests/kind/test_readme_on_kind.py), where the
operator runs from its image; every other quick-start block runs here, with bash and
the real kubectl, as a user types it, the tenant's block as a user with only the rights
the admin's block gives the tenant.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from readme_quickstart import (
    REPO,
    as_user_writes_it,
    delete_quickstart_credentials,
    impersonating_kubeconfig,
    quickstart_blocks,
    run_block,
)

pytestmark = pytest.mark.e2e

OPERATOR_NAMESPACE = "regcred-system"
TENANT_COMPONENT = REPO / "deploy" / "components" / "tenant-boundary" / "kustomization.yaml"
TENANT_ROLES = REPO / "deploy" / "base" / "tenant-roles.yaml"
# The README's namespaces, and one of another tenant that must never receive team-a's secret.
README_NAMESPACES = ("team-frontend", "team-a-ci", "team-a-prod")
OTHER_TENANT_NAMESPACE = "team-b-prod"


def component_tenant_label() -> str:
    """The --tenant-label the tenant-boundary component gives the operator."""
    match = re.search(r"--tenant-label=(\S+)", TENANT_COMPONENT.read_text())
    assert match, "the tenant-boundary component no longer sets --tenant-label"
    return match.group(1)


@pytest.fixture
def readme_operator(kubectl, cluster, operator_with: Callable[..., object]) -> Iterator[None]:
    """The operator as the README installs it, with the README's objects removed afterwards."""
    # Another test's install may have left regcred-system (or a README namespace) terminating.
    for name in (*README_NAMESPACES, OTHER_TENANT_NAMESPACE, OPERATOR_NAMESPACE):
        kubectl("wait", "--for=delete", f"namespace/{name}", "--timeout=50s", check=False)
    kubectl("create", "namespace", OPERATOR_NAMESPACE)
    kubectl("apply", "--server-side", "-f", str(TENANT_ROLES))
    operator_with(
        operator_namespace=OPERATOR_NAMESPACE,
        source_namespaces=frozenset({OPERATOR_NAMESPACE}),
        tenant_label=component_tenant_label(),
    )
    yield
    # Credentials first, waiting for their cleanup, while the operator still runs.
    delete_quickstart_credentials(kubectl)
    for name in (*README_NAMESPACES, OTHER_TENANT_NAMESPACE, OPERATOR_NAMESPACE):
        kubectl("delete", "namespace", name, "--ignore-not-found", "--timeout=50s")


def pull_secret_names(kubectl, namespace: str) -> list[str]:
    account = kubectl("-n", namespace, "get", "serviceaccount", "default", "-o", "json").stdout
    return [entry["name"] for entry in json.loads(account).get("imagePullSecrets", [])]


def test_the_kubectl_quick_start_runs_as_written(
    readme_operator, kubectl, cluster, control_plane_bin: Path, tmp_path: Path
):
    block = as_user_writes_it(quickstart_blocks()["kubectl"])
    result = run_block(
        block, cwd=tmp_path, kubectl_dir=control_plane_bin, kubeconfig=cluster.kubeconfig
    )

    assert re.search(r"^acme\s+acme-pull\s+1/1\s+True", result.stdout, re.MULTILINE), result.stdout
    assert pull_secret_names(kubectl, "team-frontend") == ["acme-pull"]


def test_the_multi_tenant_quick_start_runs_as_written(
    readme_operator, kubectl, cluster, control_plane_bin: Path, tmp_path: Path
):
    blocks = quickstart_blocks()
    label = component_tenant_label()
    # Another tenant's namespace that the tenant's selector (env=prod) would match.
    kubectl("create", "namespace", OTHER_TENANT_NAMESPACE)
    kubectl("label", "namespace", OTHER_TENANT_NAMESPACE, f"{label}=team-b", "env=prod")

    run_block(
        as_user_writes_it(blocks["multi-tenant-admin"]),
        cwd=tmp_path,
        kubectl_dir=control_plane_bin,
        kubeconfig=cluster.kubeconfig,
    )
    tenant = impersonating_kubeconfig(cluster.kubeconfig, tmp_path / "tenant.kubeconfig")
    run_block(
        as_user_writes_it(blocks["multi-tenant-tenant"]),
        cwd=tmp_path,
        kubectl_dir=control_plane_bin,
        kubeconfig=tenant,
    )

    assert kubectl("-n", "team-a-prod", "get", "secret", "harbor-pull", check=False).returncode == 0
    assert "harbor-pull" in pull_secret_names(kubectl, "team-a-prod")
    # The selector narrows within the tenant: its own namespace lacks env=prod.
    assert kubectl("-n", "team-a-ci", "get", "secret", "harbor-pull", check=False).returncode != 0
    assert (
        kubectl(
            "-n", OTHER_TENANT_NAMESPACE, "get", "secret", "harbor-pull", check=False
        ).returncode
        != 0
    )
