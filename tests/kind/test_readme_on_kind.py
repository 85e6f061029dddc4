"""The README's quick starts, run as written on a real node (the kind tier).

The operator's image is built from this checkout and loaded into the node, standing in
for the image a user builds and pushes (the README's `quickstart: build` block); every
other block runs as written with bash and the real kubectl, with only the image
reference and the password placeholder replaced: the install blocks install the
operator from `deploy/` through the user's overlays, and the operator's own Pods serve
the credentials. The tenant's block runs as a user with only the rights the admin's
block gives the tenant. Afterwards everything the blocks made is removed, credentials
first, so that the tier's other modules find the cluster as before.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from kind_helpers import Kubectl
from regcred_dev.kind import KindCluster, load_image

from readme_quickstart import (
    as_user_writes_it,
    checkout_layout,
    delete_quickstart_credentials,
    impersonating_kubeconfig,
    quickstart_blocks,
    run_block,
)

README_NAMESPACES = ("team-frontend", "team-a-ci", "team-a-prod")
IMAGE_BLOCKS = ("kubectl-install", "helm-install")
BLOCK_SECONDS = 900


class Checkout:
    """A folder laid out as the checkout's root, where the README's blocks run."""

    def __init__(self, folder: Path, kubectl: Kubectl, image: str) -> None:
        self.folder = folder
        self.kubectl = kubectl
        self.image = image

    def run(self, name: str, kubeconfig: Path | None = None) -> str:
        # Only the blocks that write the image into an install name it; the multi-tenant
        # install builds on theirs.
        image = self.image if name in IMAGE_BLOCKS else None
        block = as_user_writes_it(quickstart_blocks()[name], image=image)
        result = run_block(
            block,
            cwd=self.folder,
            kubectl_dir=self.kubectl.binary.parent,
            kubeconfig=kubeconfig or self.kubectl.kubeconfig,
            timeout=BLOCK_SECONDS,
        )
        return result.stdout


@pytest.fixture(scope="module")
def checkout(
    kind_cluster: KindCluster,
    kubectl: Kubectl,
    operator_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Checkout]:
    load_image(kind_cluster.name, operator_image)
    # The README starts from a cluster without the operator: an earlier module's install
    # must be gone, not terminating.
    kubectl("wait", "--for=delete", "namespace/regcred-system", "--timeout=300s")
    folder = checkout_layout(tmp_path_factory.mktemp("readme"))
    yield Checkout(folder, kubectl, operator_image)
    # The uninstall order that leaves nothing behind: credentials (and their cleanup,
    # which needs the operator) first, then the install.
    delete_quickstart_credentials(kubectl)
    for name in README_NAMESPACES:
        kubectl("delete", "namespace", name, "--ignore-not-found", "--timeout=120s")
    overlay = folder / ("my-platform" if (folder / "my-platform").exists() else "my-install")
    kubectl("delete", "-k", str(overlay), "--ignore-not-found", "--timeout=300s")


def pull_secret_names(kubectl: Kubectl, namespace: str) -> list[str]:
    account = kubectl.json("-n", namespace, "get", "serviceaccount", "default")
    return [entry["name"] for entry in account.get("imagePullSecrets", [])]


def test_the_kubectl_quick_start_runs_as_written(checkout: Checkout, kubectl: Kubectl):
    checkout.run("kubectl-install")
    output = checkout.run("kubectl")

    assert re.search(r"^acme\s+acme-pull\s+1/1\s+True", output, re.MULTILINE), output
    assert pull_secret_names(kubectl, "team-frontend") == ["acme-pull"]
    deployment = kubectl.json("-n", "regcred-system", "get", "deployment", "regcred-operator")
    assert deployment["status"].get("readyReplicas") == 2


def test_the_multi_tenant_quick_start_runs_as_written(
    checkout: Checkout, kubectl: Kubectl, tmp_path: Path
):
    checkout.run("multi-tenant-install")
    checkout.run("multi-tenant-admin")
    tenant = impersonating_kubeconfig(kubectl.kubeconfig, tmp_path / "tenant.kubeconfig")
    checkout.run("multi-tenant-tenant", kubeconfig=tenant)

    assert "harbor-pull" in pull_secret_names(kubectl, "team-a-prod")
    replica = kubectl.json("-n", "team-a-prod", "get", "secret", "harbor-pull")
    assert replica["type"] == "kubernetes.io/dockerconfigjson"
    auths = json.loads(base64.b64decode(replica["data"][".dockerconfigjson"]))["auths"]
    assert list(auths) == ["harbor.team-a.example"]
    # The selector narrows within the tenant: its own namespace lacks env=prod.
    assert "harbor-pull" not in pull_secret_names(kubectl, "team-a-ci")
