"""The app of apps in deploy/argocd/ orders the operator before the credentials (Argo CD v3.6.1).

``platform-root`` syncs the two child Applications; the operator's is in wave -1, the
credentials' in wave 1. With the Application health check from argocd-cm-health.yaml,
Argo CD does not create the credentials' Application until the operator's is Healthy,
which needs the operator's Deployment to be available.

This control plane has no kubelet, so the operator runs as a process (``regcred run``,
what each of the Deployment's Pods would run) and, once it answers /readyz, the test
writes the status a node and the Deployment and disruption controllers would write for
two ready replicas. Until then the Deployment has no status, as on a cluster whose
operator Pods are not ready.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import yaml
from argocd_env import ARGOCD_DIR, PLATFORM_REPO_URL, REPO, ArgoEnv
from argocd_harness import (
    PATIENCE_SECONDS,
    ApplicationRecorder,
    health_status,
    operation_phase,
    sync_status,
    wait_established,
)
from kubernetes import client

from regcred_dev.controlplane import wait_for

OPERATOR_NAMESPACE = "regcred-system"
OPERATOR = "regcred-operator"
EXAMPLES = REPO / "examples"
# Argo CD compares every few seconds here (argocd_harness.APP_RESYNC_SECONDS); the gate
# must hold across this many of its comparisons of the operator's Application.
COMPARISONS_WHILE_GATED = 3


def mark_operator_available(cluster_api: client.ApiClient) -> None:
    """Write what a node and the controllers would for two ready operator Pods."""
    apps = client.AppsV1Api(cluster_api)
    policy = client.PolicyV1Api(cluster_api)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    deployment = apps.read_namespaced_deployment(OPERATOR, OPERATOR_NAMESPACE)
    replicas = deployment.spec.replicas
    apps.patch_namespaced_deployment_status(
        OPERATOR,
        OPERATOR_NAMESPACE,
        {
            "status": {
                "observedGeneration": deployment.metadata.generation,
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
                "conditions": [
                    {
                        "type": "Available",
                        "status": "True",
                        "reason": "MinimumReplicasAvailable",
                        "message": "stand-in for a node",
                        "lastUpdateTime": now,
                        "lastTransitionTime": now,
                    },
                    {
                        "type": "Progressing",
                        "status": "True",
                        "reason": "NewReplicaSetAvailable",
                        "message": "stand-in for a node",
                        "lastUpdateTime": now,
                        "lastTransitionTime": now,
                    },
                ],
            }
        },
    )
    budget = policy.read_namespaced_pod_disruption_budget(OPERATOR, OPERATOR_NAMESPACE)
    policy.patch_namespaced_pod_disruption_budget_status(
        OPERATOR,
        OPERATOR_NAMESPACE,
        {
            "status": {
                "observedGeneration": budget.metadata.generation,
                "currentHealthy": replicas,
                "desiredHealthy": replicas - 1,
                "expectedPods": replicas,
                "disruptionsAllowed": 1,
                "conditions": [
                    {
                        "type": "DisruptionAllowed",
                        "status": "True",
                        "reason": "SufficientPods",
                        "message": "",
                        "lastTransitionTime": now,
                        "observedGeneration": budget.metadata.generation,
                    },
                ],
            }
        },
    )


def test_credentials_wait_for_the_operator_application(argo_env: ArgoEnv):
    env = argo_env
    env.apply_projects()
    env.publish_operator_release()  # main: the targetRevision of apps/regcred-operator.yaml
    apps_dir = ARGOCD_DIR / "apps"
    env.git.repo(PLATFORM_REPO_URL).publish(
        {
            "argocd/apps/regcred-operator.yaml": env.git.rewrite(
                (apps_dir / "regcred-operator.yaml").read_text()
            ),
            "argocd/apps/registry-credentials.yaml": env.git.rewrite(
                (apps_dir / "registry-credentials.yaml").read_text()
            ),
            "registry-credentials/acme.yaml": (EXAMPLES / "30-registrycredential.yaml").read_text(),
        },
        "platform configuration",
    )
    env.kubectl("apply", "-f", str(EXAMPLES / "20-tenant-namespaces.yaml"))
    with ApplicationRecorder(env.cluster.api_client) as recorder:
        gate_opened = bootstrap_and_open_the_gate(env)
        seen = recorder.of("registry-credentials")
    # No version of the credentials' Application predates the operator becoming available:
    # in particular, it was not created while the operator's Application was reported
    # Healthy for a moment in the middle of its first sync.
    assert seen
    assert min(app["metadata"]["creationTimestamp"] for app in seen) >= gate_opened


def bootstrap_and_open_the_gate(env: ArgoEnv) -> str:
    """Sync the root, check wave 1 waits, bring the operator up; return when it did."""
    env.apps.apply(env.git.manifest(ARGOCD_DIR / "root-application.yaml"))

    # Wave -1 is applied: the CRD and the operator's objects exist, the Deployment is not
    # available, so the operator's Application is Progressing and the root sync waits.
    operator_app = env.apps.wait(
        OPERATOR,
        lambda app: sync_status(app) == "Synced" and health_status(app) == "Progressing",
        "the operator's Application synced and Progressing",
    )
    wait_established(env.kubectl, "registrycredentials.regcred.dev")

    def root_waits_on_operator(app: dict[str, Any]) -> bool:
        operation = app.get("status", {}).get("operationState", {})
        return operation.get("phase") == "Running" and (
            f"waiting for healthy state of argoproj.io/Application/{OPERATOR}"
            in operation.get("message", "")
        )

    env.apps.wait("platform-root", root_waits_on_operator, "the root sync waiting on wave -1")
    first_comparison = operator_app["status"]["reconciledAt"]
    seen: set[str] = {first_comparison}

    def compared_again(app: dict[str, Any]) -> bool:
        seen.add(app["status"]["reconciledAt"])
        assert env.apps.get("registry-credentials") is None, (
            "wave 1 applied before wave -1 was healthy"
        )
        return len(seen) > COMPARISONS_WHILE_GATED

    env.apps.wait(OPERATOR, compared_again, "several comparisons of a Progressing operator")
    assert health_status(env.apps.get(OPERATOR)) == "Progressing"  # type: ignore[arg-type]
    assert root_waits_on_operator(env.apps.get("platform-root"))  # type: ignore[arg-type]
    assert env.apps.get("registry-credentials") is None

    # The operator comes up: its process serves, and its Deployment reports two ready replicas.
    env.kubectl("apply", "-f", str(EXAMPLES / "10-source-secret.yaml"))
    env.operator.start()
    gate_opened = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    mark_operator_available(env.cluster.api_client)
    env.apps.wait(OPERATOR, lambda app: health_status(app) == "Healthy", "the operator Healthy")

    credentials_app = env.apps.wait(
        "registry-credentials",
        lambda app: sync_status(app) == "Synced" and health_status(app) == "Healthy",
        "wave 1 synced and Healthy",
    )
    (credential,) = [
        r for r in credentials_app["status"]["resources"] if r["kind"] == "RegistryCredential"
    ]
    assert credential["health"]["status"] == "Healthy"
    root = env.apps.wait(
        "platform-root",
        lambda app: operation_phase(app) == "Succeeded" and health_status(app) == "Healthy",
        "the root sync finished",
    )
    assert sync_status(root) == "Synced"

    # The operator's Application tracks what deploy/ installs, the CRD among them.
    kinds = {r["kind"] for r in env.apps.get(OPERATOR)["status"]["resources"]}  # type: ignore[index]
    rendered = yaml.safe_load_all(env.kubectl("kustomize", str(REPO / "deploy")))
    assert kinds == {doc["kind"] for doc in rendered if doc}
    wait_for(
        lambda: (
            env.cluster.custom.get_cluster_custom_object(
                "regcred.dev", "v1alpha1", "registrycredentials", "acme"
            )
            .get("status", {})
            .get("observedGeneration")
            == 1
        ),
        PATIENCE_SECONDS,
        "the credential's status",
    )
    return gate_opened
