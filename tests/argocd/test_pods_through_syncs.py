"""No Pod without its pull secret because of a sync (Argo CD v3.6.1, Kubernetes v1.37.2).

The team's ServiceAccount ``frontend`` is in Git with a pull secret of its own, so Argo CD
owns its ``imagePullSecrets``; the operator adds ``acme-pull`` to it. Pods are created
without interruption in the namespace while Argo CD syncs that ServiceAccount again and
again: Git changes (automated sync), manual syncs, and self-heal after the object drifted
or was deleted. Every Pod the API server admitted must list ``acme-pull``.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

from argocd_env import (
    TEAM_NAMESPACE,
    TEAM_REPO_URL,
    TEAM_SERVICE_ACCOUNT,
    ArgoEnv,
    example_credential,
    team_service_account,
)
from argocd_harness import operation_phase, synced
from kubernetes import client

from regcred.controlplane import wait_for

SECRET = "acme-pull"  # examples/30-registrycredential.yaml's secretName
TEAM_PULL_SECRET = "frontend-own"
ROUNDS = 3


@dataclass
class PodStream:
    """Creates Pods one after another until stopped; keeps what the API server admitted."""

    core: client.CoreV1Api
    namespace: str
    # What the test is doing meanwhile; each admitted Pod is filed under it.
    during: str = "start"
    admitted: list[tuple[str, list[str]]] = field(default_factory=list)
    refused: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=30)

    def _run(self) -> None:
        for number in itertools.count():
            if self._stop.is_set():
                return
            pod = client.V1Pod(
                metadata=client.V1ObjectMeta(name=f"app-{number}", labels={"app": "stream"}),
                spec=client.V1PodSpec(
                    service_account_name=TEAM_SERVICE_ACCOUNT,
                    containers=[
                        client.V1Container(name="app", image="registry.acme.example:5000/app:1")
                    ],
                ),
            )
            try:
                created = self.core.create_namespaced_pod(self.namespace, pod)
            except client.ApiException:
                # e.g. the ServiceAccount does not exist for a moment after a deletion:
                # the API server refuses the Pod, and its controller would try again.
                self.refused += 1
                self._stop.wait(0.05)
                continue
            secrets = [ref.name for ref in created.spec.image_pull_secrets or []]
            self.admitted.append((self.during, secrets))

    def lacking(self, secret: str) -> int:
        return sum(1 for _, secrets in self.admitted if secret not in secrets)

    def report(self, secret: str) -> str:
        """Pods admitted and Pods without `secret`, by what was going on."""
        counts: dict[str, list[int]] = {}
        for during, secrets in self.admitted:
            total = counts.setdefault(during, [0, 0])
            total[0] += 1
            total[1] += secret not in secrets
        return ", ".join(f"{during}: {bad} of {all_}" for during, (all_, bad) in counts.items())


def account_entries(core: client.CoreV1Api) -> list[str] | None:
    try:
        account = core.read_namespaced_service_account(TEAM_SERVICE_ACCOUNT, TEAM_NAMESPACE)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise
    return [ref.name for ref in account.image_pull_secrets or []]


def sync_events(env: ArgoEnv, core: client.CoreV1Api) -> list[tuple[str, Callable[[int], None]]]:
    """The ways Argo CD comes to apply the ServiceAccount again, each waiting until done."""
    team = env.git.repo(TEAM_REPO_URL)

    def succeeded_with(effect: Callable[[], bool]) -> Callable[[dict[str, Any]], bool]:
        # Argo CD records the operation as Running before it applies anything, so once the
        # effect is visible, Succeeded is this operation's outcome, not an earlier one's.
        return lambda app: effect() and operation_phase(app) == "Succeeded"

    def git_change(revision: int) -> None:
        commit = team.publish(
            {"deploy/serviceaccount.yaml": team_service_account(revision, [TEAM_PULL_SECRET])},
            f"revision {revision}",
        )
        env.apps.refresh("team-frontend")
        env.apps.wait(
            "team-frontend",
            lambda app: (
                operation_phase(app) == "Succeeded"
                and app["status"]["operationState"]["syncResult"]["revision"] == commit
            ),
            f"the sync of revision {revision}",
        )

    def manual_sync(revision: int) -> None:
        marker = f"manual-{revision}"
        env.apps.sync("team-frontend", marker)
        env.apps.wait("team-frontend", synced(marker), "a manual sync")

    def drift(revision: int) -> None:
        core.patch_namespaced_service_account(
            TEAM_SERVICE_ACCOUNT,
            TEAM_NAMESPACE,
            {"metadata": {"labels": {"app.kubernetes.io/part-of": "edited-by-hand"}}},
        )

        def label_restored() -> bool:
            account = core.read_namespaced_service_account(TEAM_SERVICE_ACCOUNT, TEAM_NAMESPACE)
            return account.metadata.labels.get("app.kubernetes.io/part-of") == "frontend"

        env.apps.wait("team-frontend", succeeded_with(label_restored), "self-heal of a label")

    def deletion(revision: int) -> None:
        core.delete_namespaced_service_account(TEAM_SERVICE_ACCOUNT, TEAM_NAMESPACE)
        env.apps.wait(
            "team-frontend",
            succeeded_with(lambda: account_entries(core) is not None),
            "self-heal of a deleted ServiceAccount",
        )

    return [
        ("git change", git_change),
        ("manual sync", manual_sync),
        ("drift", drift),
        ("deletion", deletion),
    ]


def test_every_pod_carries_the_pull_secret_across_syncs(argo_env: ArgoEnv):
    env = argo_env
    core = env.cluster.core
    env.start_platform(example_credential(service_accounts=["default", TEAM_SERVICE_ACCOUNT]))
    env.start_team({"serviceaccount.yaml": team_service_account(0, [TEAM_PULL_SECRET])})
    wait_for(lambda: SECRET in (account_entries(core) or []), 60, "the operator's entry")

    events = sync_events(env, core)
    with PodStream(core, TEAM_NAMESPACE) as pods:
        for revision in range(1, ROUNDS + 1):
            for kind, event in events:
                pods.during = kind
                event(revision)
                # Each sync is over; the operator puts its entry back before the next one.
                wait_for(lambda: SECRET in (account_entries(core) or []), 60, "the entry restored")
                pods.during = "between syncs"
    print(
        f"\nPods admitted: {len(pods.admitted)}, without {SECRET}: {pods.lacking(SECRET)} "
        f"({pods.report(SECRET)}); refused while the ServiceAccount was absent: "
        f"{pods.refused}; {ROUNDS * len(events)} syncs"
    )
    assert len(pods.admitted) > 0
    assert pods.lacking(SECRET) == 0, (
        f"{pods.lacking(SECRET)} of {len(pods.admitted)} Pods were admitted without {SECRET}"
    )
