"""The credentials' Application stays Synced and Healthy while the operator writes status.

The operator writes a RegistryCredential's status (counts, conditions, messages) on every
change it acts on; Argo CD must not take those writes for drift, and the health check
must keep reading Healthy. Every version of the Application the API server held during
the test is checked, not only the last (Argo CD v3.6.1).
"""

from __future__ import annotations

from typing import Any

from argocd_env import ArgoEnv, example_credential
from argocd_harness import (
    PATIENCE_SECONDS,
    ApplicationRecorder,
    health_status,
    resource_status,
    sync_status,
)
from kubernetes import client

from regcred_dev.controlplane import wait_for

CREDENTIAL = "acme"
NEW_NAMESPACES = 4


def credential_status(env: ArgoEnv) -> dict[str, Any]:
    credential = env.cluster.custom.get_cluster_custom_object(
        "regcred.dev", "v1alpha1", "registrycredentials", CREDENTIAL
    )
    return credential.get("status", {})  # type: ignore[no-any-return]


def ready_message(env: ArgoEnv) -> str | None:
    for condition in credential_status(env).get("conditions", []):
        if condition["type"] == "Ready" and condition["status"] == "True":
            return condition["message"]  # type: ignore[no-any-return]
    return None


def shown_message(app: dict[str, Any]) -> str | None:
    """The credential's health message as the Application shows it."""
    resource = resource_status(app, "RegistryCredential", CREDENTIAL) or {}
    return resource.get("health", {}).get("message")  # type: ignore[no-any-return]


def test_credentials_application_stays_synced_and_healthy_while_status_changes(argo_env: ArgoEnv):
    env = argo_env
    env.start_platform(example_credential())
    start = env.apps.get("registry-credentials")
    assert start is not None
    history = start["status"].get("history", [])
    operation_started = start["status"]["operationState"]["startedAt"]

    status_versions: list[str] = []
    with ApplicationRecorder(env.cluster.api_client) as recorder:
        for number in range(NEW_NAMESPACES):
            before = ready_message(env)
            env.cluster.core.create_namespace(
                client.V1Namespace(
                    metadata=client.V1ObjectMeta(
                        name=f"team-status-{number}", labels={"tenant": "acme"}
                    )
                )
            )
            # The operator copies the Secret there and writes a new count into the status.
            wait_for(
                lambda before=before: ready_message(env) not in (None, before),
                PATIENCE_SECONDS,
                "a new Ready message",
            )
            status_versions.append(ready_message(env) or "")
            # Argo CD compares again after that status write.
            compared = env.apps.get("registry-credentials")["status"]["reconciledAt"]  # type: ignore[index]
            env.apps.refresh("registry-credentials")
            env.apps.wait(
                "registry-credentials",
                lambda app: app["status"]["reconciledAt"] != compared,  # noqa: B023
                "a comparison after the status write",
            )
        env.cluster.core.delete_namespace("team-status-0")
        wait_for(
            lambda: ready_message(env) != status_versions[-1],
            PATIENCE_SECONDS,
            "the count going down",
        )
        env.apps.refresh("registry-credentials")
        final = env.apps.wait(
            "registry-credentials",
            lambda app: shown_message(app) == ready_message(env),
            "the last message shown",
        )
        seen = recorder.of("registry-credentials")

    print(f"\nstatus messages written: {status_versions}; Application versions seen: {len(seen)}")
    assert len(set(status_versions)) == NEW_NAMESPACES
    assert seen, "the watch saw no version of the Application"
    states = {(sync_status(app), health_status(app)) for app in seen}
    assert states == {("Synced", "Healthy")}
    credential_health = {
        resource["health"]["status"]
        for app in seen
        for resource in app["status"].get("resources", [])
        if resource["kind"] == "RegistryCredential"
    }
    assert credential_health == {"Healthy"}
    # No sync was started for it: status writes are not drift.
    assert final["status"]["operationState"]["startedAt"] == operation_started
    assert final["status"].get("history", []) == history
