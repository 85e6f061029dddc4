"""The Argo CD tier: a real Argo CD (built once, cached) syncing deploy/argocd/ from local Git.

Every test module gets its own local control plane with Argo CD running against it,
because Argo CD installs cluster-wide objects (its CRDs; an admission policy in one test)
and watches every resource of the cluster. So this tier never uses
``$REGCRED_TEST_KUBECONFIG``, and never shares a cluster with the other tiers.

The world each module gets is described in argocd_env.py.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from argocd_build import ArgoCDInstall, ensure_argocd
from argocd_env import ArgoEnv, LocalGit
from argocd_harness import Applications, ArgoCD
from operator_process import OperatorProcess
from testcluster import local_cluster

from regcred_dev.controlplane import BuildError, Kubectl, ensure_binaries

# A cold build takes 10 min of CPU time (over 5 min on 2 idle cores, 30 min on a busy
# machine); it runs inside the first test of the tier, whose time limit must allow for it.
TIER_TIMEOUT_SECONDS = 3600


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.timeout(TIER_TIMEOUT_SECONDS))


def require_tools() -> None:
    """git and redis-server come from Debian (hack/argocd-deps.sh); a skip here, an error on CI."""
    missing = [tool for tool in ("git", "redis-server") if shutil.which(tool) is None]
    if not missing:
        return
    message = f"{', '.join(missing)} not installed; `sudo bash hack/argocd-deps.sh` installs them"
    if os.environ.get("CI"):
        pytest.fail(message + "; on CI that is an error, not a skip", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def argocd_install() -> ArgoCDInstall:
    """The pinned Argo CD and kustomize, built once into the regcred cache."""
    require_tools()
    try:
        return ensure_argocd()
    except BuildError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="module")
def argo_env(
    argocd_install: ArgoCDInstall, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ArgoEnv]:
    """A fresh control plane with Argo CD running against it, for one test module."""
    workdir = tmp_path_factory.mktemp("argocd")
    with local_cluster() as cluster:
        kubectl = Kubectl(ensure_binaries() / "kubectl", cluster.kubeconfig)
        argocd = ArgoCD(argocd_install, kubectl, workdir / "argocd")
        operator = OperatorProcess(cluster.kubeconfig, workdir / "operator.log")
        with argocd:
            env = ArgoEnv(
                cluster=cluster,
                kubectl=kubectl,
                argocd=argocd,
                apps=Applications(cluster.api_client),
                git=LocalGit(workdir / "git"),
                operator=operator,
                workdir=workdir,
            )
            try:
                yield env
            finally:
                operator.stop()
