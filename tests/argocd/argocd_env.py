"""One test module's world in the Argo CD tier: a control plane, Argo CD, local Git, an operator.

The repositories deploy/argocd/ names (``https://github.com/...``, ``https://git.example.com/...``)
are served as bare repositories under a local folder of the same shape, and the manifests
are applied with those URLs rewritten to ``file://`` ones; nothing else in them changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from argocd_harness import (
    Applications,
    ArgoCD,
    health_status,
    operation_phase,
    sync_status,
    wait_established,
)
from gitrepos import GitRepo
from operator_process import OperatorProcess
from testcluster import Cluster

from regcred_dev.controlplane import Kubectl

__all__ = [
    "ARGOCD_DIR",
    "EXAMPLES",
    "OPERATOR_REPO_URL",
    "PLATFORM_REPO_URL",
    "REPO",
    "TEAM_NAMESPACE",
    "TEAM_REPO_URL",
    "TEAM_SERVICE_ACCOUNT",
    "ArgoEnv",
    "LocalGit",
    "example_credential",
    "team_service_account",
]

REPO = Path(__file__).resolve().parents[2]
ARGOCD_DIR = REPO / "deploy" / "argocd"
# The URL prefixes deploy/argocd/ uses; each becomes a folder of bare repositories.
URL_HOSTS = ("https://github.com/", "https://git.example.com/")
OPERATOR_REPO_URL = "https://github.com/regcred/regcred-operator.git"
PLATFORM_REPO_URL = "https://git.example.com/platform/cluster-config.git"
TEAM_REPO_URL = "https://git.example.com/teams/frontend.git"
EXAMPLES = REPO / "examples"
TEAM_NAMESPACE = "team-frontend"  # application-team-frontend.yaml's destination
TEAM_SERVICE_ACCOUNT = "frontend"

Manifest = dict[str, Any]


class LocalGit:
    """Bare repositories standing for the https repositories deploy/argocd/ names."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def local_url(self, url: str) -> str:
        for host in URL_HOSTS:
            if url.startswith(host):
                return (self.folder / url.removeprefix("https://")).as_uri()
        raise ValueError(f"{url} is not under {URL_HOSTS}")

    def repo(self, url: str) -> GitRepo:
        """The bare repository behind `url` (an https URL of deploy/argocd/), created once."""
        return GitRepo(self.folder / url.removeprefix("https://"))

    def rewrite(self, text: str) -> str:
        """Manifest text with every repository URL pointing at the local copies."""
        for host in URL_HOSTS:
            text = text.replace(host, (self.folder / host.removeprefix("https://")).as_uri() + "/")
        return text

    def manifests(self, path: Path) -> list[Manifest]:
        """The objects of a deploy/argocd/ file, URLs rewritten."""
        return [doc for doc in yaml.safe_load_all(self.rewrite(path.read_text())) if doc]

    def manifest(self, path: Path) -> Manifest:
        (only,) = self.manifests(path)
        return only


@dataclass
class ArgoEnv:
    """One test module's world: a control plane, Argo CD on it, local Git, an operator."""

    cluster: Cluster
    kubectl: Kubectl
    argocd: ArgoCD
    apps: Applications
    git: LocalGit
    operator: OperatorProcess
    workdir: Path

    def apply_projects(self) -> None:
        for name in ("appproject-platform.yaml", "appproject-tenants.yaml"):
            self.apps.apply(self.git.manifest(ARGOCD_DIR / name))

    def install_crd(self) -> None:
        self.kubectl("apply", "--server-side", "-k", str(REPO / "crds"))
        wait_established(self.kubectl, "registrycredentials.regcred.dev")

    def publish_operator_release(self) -> None:
        """This checkout's deploy/ and crds/ as the operator repository's main branch."""
        self.git.repo(OPERATOR_REPO_URL).publish(
            {"deploy": REPO / "deploy", "crds": REPO / "crds"}, "deploy/ and crds/ of this checkout"
        )

    # -- the scenarios the tests share ---------------------------------------------------

    def start_platform(self, credential: Manifest) -> None:
        """The credentials' Application synced from the platform repository, the operator running.

        The CRD is installed beforehand (the sync-wave test installs it through Argo CD
        instead); the source Secret is created out of band, as docs/argocd.md advises.
        """
        self.install_crd()
        self.kubectl("apply", "-f", str(EXAMPLES / "00-operator-namespace.yaml"))
        self.kubectl("apply", "-f", str(EXAMPLES / "10-source-secret.yaml"))
        self.apply_projects()
        name = credential["metadata"]["name"]
        self.git.repo(PLATFORM_REPO_URL).publish(
            {f"registry-credentials/{name}.yaml": yaml.safe_dump(credential)}, f"credential {name}"
        )
        self.apps.apply(self.git.manifest(ARGOCD_DIR / "apps" / "registry-credentials.yaml"))
        if not self.operator.running:
            self.operator.start()
        self.apps.wait(
            "registry-credentials",
            lambda app: sync_status(app) == "Synced" and health_status(app) == "Healthy",
            "the credentials synced and Healthy",
        )

    def start_team(self, files: dict[str, str], application: Manifest | None = None) -> Manifest:
        """team-frontend's Application (deploy/argocd/application-team-frontend.yaml) synced.

        `files` are the team repository's contents under ``deploy/``; the namespace
        (examples/20-tenant-namespaces.yaml) exists beforehand, labelled for the
        credential. Returns the Application as applied.
        """
        self.kubectl("apply", "-f", str(EXAMPLES / "20-tenant-namespaces.yaml"))
        self.git.repo(TEAM_REPO_URL).publish(
            {f"deploy/{path}": text for path, text in files.items()}, "team manifests"
        )
        app = application or self.git.manifest(ARGOCD_DIR / "application-team-frontend.yaml")
        self.apps.apply(app)
        self.apps.wait(
            "team-frontend",
            lambda live: sync_status(live) == "Synced" and operation_phase(live) == "Succeeded",
            "the team's Application synced",
        )
        return app


def example_credential(service_accounts: list[str] | None = None) -> Manifest:
    """examples/30-registrycredential.yaml, optionally patching other ServiceAccounts."""
    credential: Manifest = yaml.safe_load((EXAMPLES / "30-registrycredential.yaml").read_text())
    if service_accounts is not None:
        credential["spec"]["serviceAccounts"] = service_accounts
    return credential


def team_service_account(revision: int, pull_secrets: list[str] | None) -> str:
    """The team's ServiceAccount ``frontend`` as kept in its Git repository.

    `pull_secrets` are the team's own entries (None: the field is not declared at all);
    the revision annotation lets a test change the object in Git.
    """
    account: Manifest = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": TEAM_SERVICE_ACCOUNT,
            "labels": {"app.kubernetes.io/part-of": "frontend"},
            "annotations": {"frontend.example/revision": str(revision)},
        },
    }
    if pull_secrets is not None:
        account["imagePullSecrets"] = [{"name": name} for name in pull_secrets]
    return yaml.safe_dump(account)
