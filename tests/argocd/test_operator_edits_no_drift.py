"""The operator's replicas and ServiceAccount edits never make an Application OutOfSync.

Two Applications watch what the operator writes: ``registry-credentials`` (whose
RegistryCredential owns the replicas) and ``team-frontend``, whose ServiceAccount is in Git
with a pull secret of its own and receives the operator's entry, with the ignore rules of
deploy/argocd/application-team-frontend.yaml. The operator then writes again and again:
it rotates every replica, restores a deleted replica and a removed ServiceAccount entry,
and serves a new namespace. Argo CD compares after each write; no version of either
Application may be OutOfSync, and neither may start a sync (Argo CD v3.6.1).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from argocd_env import (
    TEAM_NAMESPACE,
    TEAM_SERVICE_ACCOUNT,
    ArgoEnv,
    example_credential,
    team_service_account,
)
from argocd_harness import PATIENCE_SECONDS, ApplicationRecorder, resource_status, sync_status
from kubernetes import client

from regcred_dev.controlplane import wait_for

SECRET = "acme-pull"
APPLICATIONS = ("registry-credentials", "team-frontend")


def entries(core: client.CoreV1Api) -> list[str]:
    account = core.read_namespaced_service_account(TEAM_SERVICE_ACCOUNT, TEAM_NAMESPACE)
    return [ref.name for ref in account.image_pull_secrets or []]


def replica_password(core: client.CoreV1Api) -> str | None:
    """The password in the team namespace's replica (compared, never printed)."""
    try:
        replica = core.read_namespaced_secret(SECRET, TEAM_NAMESPACE)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise
    config = json.loads(base64.b64decode(replica.data[".dockerconfigjson"]))
    (auth,) = config["auths"].values()
    return auth["password"]  # type: ignore[no-any-return]


def test_operator_writes_leave_applications_synced(argo_env: ArgoEnv):
    env = argo_env
    core = env.cluster.core
    env.start_platform(example_credential(service_accounts=["default", TEAM_SERVICE_ACCOUNT]))
    env.start_team({"serviceaccount.yaml": team_service_account(0, ["frontend-own"])})
    wait_for(
        lambda: SECRET in entries(core),
        PATIENCE_SECONDS,
        "the operator's entry in the team's ServiceAccount",
    )
    started = {
        name: env.apps.get(name)["status"]["operationState"]["startedAt"]  # type: ignore[index]
        for name in APPLICATIONS
    }

    def compare_all() -> None:
        """Have Argo CD compare both Applications again, and wait until it has."""
        for name in APPLICATIONS:
            before = env.apps.get(name)["status"]["reconciledAt"]  # type: ignore[index]
            env.apps.refresh(name)
            env.apps.wait(
                name,
                lambda app: app["status"]["reconciledAt"] != before,  # noqa: B023
                "a comparison",
            )

    def rotate() -> None:
        env.kubectl(
            "-n",
            "regcred-system",
            "patch",
            "secret",
            "acme-robot",
            "--type",
            "merge",
            "-p",
            '{"stringData": {"password": "rotated-in-the-test"}}',
        )
        wait_for(
            lambda: replica_password(core) == "rotated-in-the-test",
            PATIENCE_SECONDS,
            "the rotated replica",
        )

    def delete_replica() -> None:
        uid = core.read_namespaced_secret(SECRET, TEAM_NAMESPACE).metadata.uid
        core.delete_namespaced_secret(SECRET, TEAM_NAMESPACE)
        wait_for(lambda: _uid(core) not in (None, uid), PATIENCE_SECONDS, "the replica restored")

    def remove_entry() -> None:
        core.patch_namespaced_service_account(
            TEAM_SERVICE_ACCOUNT, TEAM_NAMESPACE, [{"op": "remove", "path": "/imagePullSecrets/1"}]
        )
        wait_for(lambda: SECRET in entries(core), PATIENCE_SECONDS, "the entry restored")

    def new_namespace() -> None:
        core.create_namespace(
            client.V1Namespace(
                metadata=client.V1ObjectMeta(name="team-later", labels={"tenant": "acme"})
            )
        )
        wait_for(
            lambda: _uid(core, "team-later") is not None,
            PATIENCE_SECONDS,
            "a replica in the new namespace",
        )

    operator_writes: list[Callable[[], None]] = [
        rotate,
        delete_replica,
        remove_entry,
        new_namespace,
    ]
    with ApplicationRecorder(env.cluster.api_client) as recorder:
        compare_all()
        for write in operator_writes:
            write()
            compare_all()
        seen = {name: recorder.of(name) for name in APPLICATIONS}

    for name in APPLICATIONS:
        assert seen[name], f"no version of {name} seen"
        assert {sync_status(app) for app in seen[name]} == {"Synced"}, name
        app = seen[name][-1]
        assert app["status"]["operationState"]["startedAt"] == started[name], f"{name} synced again"
    # The replicas are not the Applications' resources: not tracked, never pruned.
    for name in APPLICATIONS:
        assert resource_status(seen[name][-1], "Secret", SECRET) is None
    account = resource_status(seen["team-frontend"][-1], "ServiceAccount", TEAM_SERVICE_ACCOUNT)
    assert account is not None and account["status"] == "Synced"
    assert SECRET in entries(core)


def _uid(core: client.CoreV1Api, namespace: str = TEAM_NAMESPACE) -> Any:
    try:
        return core.read_namespaced_secret(SECRET, namespace).metadata.uid
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise
