"""No Pod without its pull secret because of a sync (Argo CD v3.6.1, Kubernetes v1.37.2).

The team's ServiceAccount ``frontend`` is in Git and the operator adds ``acme-pull`` to it.
Pods are created without pause in the namespace while Argo CD applies that ServiceAccount
again and again: a Git change (automated sync), a manual sync, self-heal after a label was
edited by hand, and (where stated) self-heal after the ServiceAccount was deleted.

- With a pull secret of its own in Git and the ignore rules of
  application-team-frontend.yaml, every sync puts Git's list back whole, so the operator's
  entry is gone until the operator adds it again (a canary for the Argo CD behaviour the
  docs describe); the opt-in MutatingAdmissionPolicy (deploy/components/pod-pull-secrets)
  still gives every Pod the secret, deletions included.
- With no ``imagePullSecrets`` in Git, syncs that update the ServiceAccount never remove
  the entry, and every Pod has it without the policy.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import threading
import uuid
from collections.abc import Iterator
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import pytest
from argocd_env import (
    ARGOCD_DIR,
    REPO,
    TEAM_NAMESPACE,
    TEAM_REPO_URL,
    TEAM_SERVICE_ACCOUNT,
    ArgoEnv,
    example_credential,
    team_service_account,
)
from argocd_harness import PATIENCE_SECONDS, operation_phase, synced
from kubernetes import client, watch

from regcred_dev.controlplane import wait_for

SECRET = "acme-pull"  # examples/30-registrycredential.yaml's secretName
TEAM_PULL_SECRET = "frontend-own"
ROUNDS = 3
POLICY_COMPONENT = REPO / "deploy" / "components" / "pod-pull-secrets"


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
            # Some room for the rest of the machine: Argo CD watches every Pod too.
            self._stop.wait(0.01)

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


class AccountWatch:
    """Every version of the team's ServiceAccount, filed under what the test was doing."""

    def __init__(self, core: client.CoreV1Api) -> None:
        self.core = core
        self.during = "start"
        self.versions: list[tuple[str, list[str]]] = []
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._watch.stop()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        stream = self._watch.stream(
            self.core.list_namespaced_service_account,
            TEAM_NAMESPACE,
            field_selector=f"metadata.name={TEAM_SERVICE_ACCOUNT}",
        )
        try:
            for event in stream:
                if event["type"] != "DELETED":
                    refs = event["object"].image_pull_secrets or []
                    self.versions.append((self.during, [ref.name for ref in refs]))
        except Exception:  # noqa: BLE001 - stop() closes the connection under the reader
            return

    def losses(self, secret: str) -> dict[str, int]:
        """How often a version lacked `secret` after one that had it, by what was going on."""
        counts: dict[str, int] = {}
        had = True
        for during, secrets in self.versions:
            if had and secret not in secrets:
                counts[during] = counts.get(during, 0) + 1
            had = secret in secrets
        return counts


def sync_events(
    env: ArgoEnv, core: client.CoreV1Api, pull_secrets: list[str] | None
) -> list[tuple[str, Callable[[int], None]]]:
    """The ways Argo CD comes to apply the ServiceAccount again, each waiting until done.

    `pull_secrets` is what the ServiceAccount declares in Git (None: no such field).
    """
    team = env.git.repo(TEAM_REPO_URL)

    def succeeded_with(effect: Callable[[], bool]) -> Callable[[dict[str, Any]], bool]:
        # Argo CD records the operation as Running before it applies anything, so once the
        # effect is visible, Succeeded is this operation's outcome, not an earlier one's.
        return lambda app: effect() and operation_phase(app) == "Succeeded"

    def git_change(revision: int) -> None:
        commit = team.publish(
            {"deploy/serviceaccount.yaml": team_service_account(revision, pull_secrets)},
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
        marker = f"regcred-tests-{uuid.uuid4().hex[:8]}"
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


StartTeam = Callable[..., None]


@pytest.fixture
def team(argo_env: ArgoEnv) -> Iterator[StartTeam]:
    """`team(pull_secrets)`: team-frontend's Application, fresh, with its ServiceAccount synced.

    The Application is application-team-frontend.yaml, with `sync_options` and
    `ignore_differences` in place of its own when given. The credential's Application
    and the operator run once for the module; each test gets a new team Application and
    ServiceAccount, and its Pods are removed afterwards.
    """
    env, core = argo_env, argo_env.cluster.core
    if env.apps.get("registry-credentials") is None:
        env.start_platform(example_credential(service_accounts=["default", TEAM_SERVICE_ACCOUNT]))

    def start(
        pull_secrets: list[str] | None,
        sync_options: list[str] | None = None,
        ignore_differences: list[dict[str, Any]] | None = None,
    ) -> None:
        application = env.git.manifest(ARGOCD_DIR / "application-team-frontend.yaml")
        if sync_options is not None:
            application["spec"]["syncPolicy"]["syncOptions"] = sync_options
        if ignore_differences is not None:
            application["spec"]["ignoreDifferences"] = ignore_differences
        env.start_team({"serviceaccount.yaml": team_service_account(0, pull_secrets)}, application)
        wait_for(
            lambda: SECRET in (account_entries(core) or []),
            PATIENCE_SECONDS,
            "the operator's entry",
        )

    yield start
    # No resources finalizer on this Application: its ServiceAccount stays, so remove it.
    env.apps.delete("team-frontend")
    wait_for(
        lambda: env.apps.get("team-frontend") is None, PATIENCE_SECONDS, "the Application gone"
    )
    core.delete_namespaced_service_account(TEAM_SERVICE_ACCOUNT, TEAM_NAMESPACE)
    # A thousand Pods or more: give the API server time to delete them all.
    core.delete_collection_namespaced_pod(
        TEAM_NAMESPACE, label_selector="app=stream", _request_timeout=PATIENCE_SECONDS
    )


@pytest.fixture
def pod_pull_secret_policy(argo_env: ArgoEnv) -> Iterator[None]:
    """deploy/components/pod-pull-secrets installed as a user would, removed afterwards."""
    overlay = Path(tempfile.mkdtemp(prefix="regcred-overlay-"))
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"components: [{os.path.relpath(POLICY_COMPONENT, overlay)}]\n"
    )
    argo_env.kubectl("apply", "--server-side", "-k", str(overlay))
    yield
    argo_env.kubectl("delete", "-k", str(overlay))


def wait_until_policy_active(core: client.CoreV1Api) -> None:
    """The API server loads a new policy shortly after it is created: probe with a dry run."""
    probe = client.V1Pod(
        metadata=client.V1ObjectMeta(name="policy-probe"),
        spec=client.V1PodSpec(
            service_account_name="default",
            containers=[client.V1Container(name="app", image="registry.acme.example:5000/app:1")],
        ),
    )

    def mutated() -> bool:
        admitted = core.create_namespaced_pod(TEAM_NAMESPACE, probe, dry_run="All")
        return SECRET in [ref.name for ref in admitted.spec.image_pull_secrets or []]

    wait_for(mutated, PATIENCE_SECONDS, "the admission policy in force", interval=0.2)


def run_syncs(
    env: ArgoEnv, kinds: list[str], pull_secrets: list[str] | None
) -> tuple[PodStream, AccountWatch]:
    """Stream Pods and watch the ServiceAccount through ROUNDS rounds of the given syncs."""
    core = env.cluster.core
    events = dict(sync_events(env, core, pull_secrets))
    with AccountWatch(core) as account, PodStream(core, TEAM_NAMESPACE) as pods:
        for revision in range(1, ROUNDS + 1):
            for kind in kinds:
                pods.during = account.during = kind
                events[kind](revision)
                # Each sync is over; the operator puts its entry back before the next one.
                wait_for(
                    lambda: SECRET in (account_entries(core) or []),
                    PATIENCE_SECONDS,
                    "the entry restored",
                )
                pods.during = account.during = "between syncs"
    print(
        f"\nPods admitted: {len(pods.admitted)}, without {SECRET}: {pods.lacking(SECRET)} "
        f"({pods.report(SECRET)}); refused while the ServiceAccount was absent: "
        f"{pods.refused}; times the ServiceAccount lost {SECRET}: {account.losses(SECRET)}"
    )
    assert len(pods.admitted) > 0
    return pods, account


ALL_SYNCS = ["git change", "manual sync", "drift", "deletion"]
UPDATING_SYNCS = ["git change", "manual sync", "drift"]


def test_every_pod_carries_the_pull_secret_across_syncs(
    argo_env: ArgoEnv, team: StartTeam, pod_pull_secret_policy: None
):
    """Git declares the team's own pull secret; the admission policy is installed."""
    team([TEAM_PULL_SECRET])
    wait_until_policy_active(argo_env.cluster.core)
    pods, _ = run_syncs(argo_env, ALL_SYNCS, [TEAM_PULL_SECRET])
    assert pods.lacking(SECRET) == 0, (
        f"{pods.lacking(SECRET)} of {len(pods.admitted)} Pods were admitted without {SECRET}"
    )
    # Every Pod also kept the team's own secret: the policy adds, it never replaces.
    assert all(TEAM_PULL_SECRET in secrets for _, secrets in pods.admitted)


def test_a_sync_of_a_declared_list_takes_the_operators_entry_away(
    argo_env: ArgoEnv, team: StartTeam
):
    """Why the policy is needed when Git declares pull secrets: Argo CD v3.6.1 writes
    Git's list whole on every sync, ignore rules and RespectIgnoreDifferences included."""
    team([TEAM_PULL_SECRET])
    _, account = run_syncs(argo_env, UPDATING_SYNCS, [TEAM_PULL_SECRET])
    losses = account.losses(SECRET)
    # Every sync took it away at least once (a Git change is sometimes applied twice: the
    # automated sync, then a self-heal of the same revision).
    assert set(losses) == set(UPDATING_SYNCS)
    assert all(losses[kind] >= ROUNDS for kind in UPDATING_SYNCS), losses


def test_without_pull_secrets_in_git_syncs_keep_the_operators_entry(
    argo_env: ArgoEnv, team: StartTeam
):
    """The recipe that holds with no policy, for syncs that update the ServiceAccount."""
    team(None)
    pods, account = run_syncs(argo_env, UPDATING_SYNCS, None)
    assert account.losses(SECRET) == {}
    assert pods.lacking(SECRET) == 0


# Two recipes measured and rejected (docs/argocd.md, "Recipes measured").
SERVER_SIDE = ["RespectIgnoreDifferences=true", "ServerSideApply=true"]


def test_server_side_apply_still_takes_the_operators_entry_away(argo_env: ArgoEnv, team: StartTeam):
    """Server-side apply with the same ignore rules: Argo CD applies Git's list as its own."""
    team([TEAM_PULL_SECRET], sync_options=SERVER_SIDE)
    _, account = run_syncs(argo_env, UPDATING_SYNCS, [TEAM_PULL_SECRET])
    losses = account.losses(SECRET)
    assert set(losses) == set(UPDATING_SYNCS)
    assert all(losses[kind] >= ROUNDS for kind in UPDATING_SYNCS), losses


def test_a_managed_fields_rule_hides_changes_to_gits_own_pull_secrets(
    argo_env: ArgoEnv, team: StartTeam
):
    """Ignoring what the operator's field manager owns keeps its entry, and with it the
    whole atomic list: Git's own change to the list is never applied, yet Argo CD says
    Synced."""
    env, core = argo_env, argo_env.cluster.core
    team(
        [TEAM_PULL_SECRET],
        sync_options=SERVER_SIDE,
        ignore_differences=[
            {"group": "", "kind": "ServiceAccount", "managedFieldsManagers": ["regcred-operator"]}
        ],
    )
    commit = env.git.repo(TEAM_REPO_URL).publish(
        {"deploy/serviceaccount.yaml": team_service_account(1, ["frontend-renamed"])},
        "the team renames its pull secret",
    )
    env.apps.refresh("team-frontend")

    def revision_applied(app: dict[str, Any]) -> bool:
        account = core.read_namespaced_service_account(TEAM_SERVICE_ACCOUNT, TEAM_NAMESPACE)
        annotations = account.metadata.annotations or {}
        return (
            app["status"]["sync"].get("revision") == commit
            and operation_phase(app) == "Succeeded"
            and annotations.get("frontend.example/revision") == "1"
        )

    app = env.apps.wait("team-frontend", revision_applied, "the rename synced")
    # Give Argo CD a few more comparisons to notice; it never does.
    compared = app["status"]["reconciledAt"]
    env.apps.refresh("team-frontend")
    app = env.apps.wait(
        "team-frontend", lambda live: live["status"]["reconciledAt"] != compared, "a comparison"
    )
    assert app["status"]["sync"]["status"] == "Synced"
    assert account_entries(core) == [TEAM_PULL_SECRET, SECRET]
