"""The ``tenants`` AppProject refuses a RegistryCredential (Argo CD v3.6.1).

A team that puts a RegistryCredential in its repository cannot have Argo CD create it:
the project lists no cluster-scoped kind. Argo CD refuses the sync as a whole, so the
ConfigMap next to it in the team's repository is not applied either.
"""

from __future__ import annotations

from typing import Any

import yaml
from argocd_env import ARGOCD_DIR, EXAMPLES, TEAM_NAMESPACE, TEAM_REPO_URL, ArgoEnv
from kubernetes import client

CONFIG_MAP = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "frontend-settings"},
    "data": {"colour": "blue"},
}


def refusal(app: dict[str, Any]) -> str | None:
    """The message in which Argo CD refuses the RegistryCredential, if it did."""
    status = app.get("status", {})
    messages = [condition.get("message", "") for condition in status.get("conditions", [])]
    messages.append(status.get("operationState", {}).get("message", ""))
    for resource in status.get("resources", []):
        messages.append(resource.get("health", {}).get("message", ""))
    for message in messages:
        if "RegistryCredential" in message and "not permitted in project tenants" in message:
            return message
    return None


def test_tenants_project_refuses_a_registry_credential(argo_env: ArgoEnv):
    env = argo_env
    env.install_crd()
    env.kubectl("apply", "-f", str(EXAMPLES / "20-tenant-namespaces.yaml"))
    env.apply_projects()
    credential = yaml.safe_load((EXAMPLES / "30-registrycredential.yaml").read_text())
    env.git.repo(TEAM_REPO_URL).publish(
        {
            "deploy/settings.yaml": yaml.safe_dump(CONFIG_MAP),
            "deploy/credential.yaml": yaml.safe_dump(credential),
        },
        "a team tries to choose its own registry credentials",
    )
    application = env.git.manifest(ARGOCD_DIR / "application-team-frontend.yaml")
    assert application["spec"]["project"] == "tenants"
    env.apps.apply(application)

    app = env.apps.wait("team-frontend", refusal, "the RegistryCredential refused")
    print(f"\nArgo CD: {refusal(app)}")
    try:
        env.cluster.custom.get_cluster_custom_object(
            "regcred.dev", "v1alpha1", "registrycredentials", credential["metadata"]["name"]
        )
    except client.ApiException as error:
        assert error.status == 404
    else:
        raise AssertionError("the tenants project let a RegistryCredential through")
    # The refusal fails the whole sync: the ConfigMap beside it is not applied either, so
    # the team sees the failure rather than a partial sync.
    try:
        env.cluster.core.read_namespaced_config_map(CONFIG_MAP["metadata"]["name"], TEAM_NAMESPACE)
    except client.ApiException as error:
        assert error.status == 404
    else:
        raise AssertionError("the sync applied part of a refused Application")
