"""The fault trials' tools: the operator as a child process, cluster snapshots, etcd compaction."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from e2e.conftest import poll
from regcred.planning.plan import (
    ADDED_PULL_SECRETS_ANNOTATION,
    CREDENTIAL_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
)
from regcred_dev.controlplane import LocalControlPlane
from regcred_dev.controlplane.runner import spawn_logged
from testcluster import Cluster

# The log line the controller writes once its caches are full and its workers run.
READY_LOG_LINE = "controller started with"
OPERATOR_START_TIMEOUT = 60.0
OPERATOR_STOP_TIMEOUT = 15.0


def env_int(name: str, default: int) -> int:
    """A trial count or size from the environment (`make soak` raises them)."""
    return int(os.environ.get(name) or default)


class OperatorProcess:
    """``regcred run`` as a child process: start, SIGKILL, SIGSTOP/SIGCONT, restart."""

    def __init__(self, kubeconfig: Path, operator_namespace: str, log_path: Path) -> None:
        self.kubeconfig = kubeconfig
        self.operator_namespace = operator_namespace
        self.log_path = log_path
        self.popen: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def command(self, extra: Sequence[str], verbose: bool) -> list[str]:
        return [
            sys.executable, "-m", "regcred.cli", *(["--verbose"] if verbose else []), "run",
            "--kubeconfig", str(self.kubeconfig),
            "--operator-namespace", self.operator_namespace,
            "--health-address", "", "--metrics-address", "",
            "--resync-seconds", "5",
            *extra,
        ]  # fmt: skip

    def start(self, *extra: str, verbose: bool = False, wait: bool = True) -> OperatorProcess:
        """Start (`extra` flags of `regcred run` win over the defaults); wait for the ready line."""
        assert not self.alive, "the operator is already running"
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.popen = spawn_logged(self.command(extra, verbose), self.log_path, own_group=False)
        self.starts += 1
        if wait:
            poll(
                lambda: READY_LOG_LINE in self.log_text(offset) or self.popen.poll() is not None,
                timeout=OPERATOR_START_TIMEOUT,
                what="the operator to start",
            )
            assert self.alive, f"the operator exited: {self.log_text(offset)[-3000:]}"
        return self

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def signal(self, signum: int) -> None:
        assert self.popen is not None
        self.popen.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed."""
        if self.alive:
            self.signal(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait()
        self.popen = None

    def stop(self, timeout: float = OPERATOR_STOP_TIMEOUT) -> int | None:
        """SIGTERM, as Kubernetes stops a pod; SIGKILL if it does not exit in `timeout`.

        Returns the exit code, or None when it had to be killed (or was not running).
        """
        if not self.alive:
            self.popen = None
            return None
        self.signal(signal.SIGCONT)  # a paused process would not act on SIGTERM
        self.signal(signal.SIGTERM)
        try:
            code: int | None = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            code = None
        self.popen = None
        return code

    def log_text(self, offset: int = 0) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode("utf-8", errors="replace")


# -- what the cluster holds -------------------------------------------------------
@dataclass(frozen=True)
class SecretFingerprint:
    """Everything about a Secret that a write would change."""

    resource_version: str
    type: str
    data: str
    labels: str
    annotations: str


def foreign_secrets(cluster: Cluster) -> dict[tuple[str, str], SecretFingerprint]:
    """Every Secret in the cluster the operator does not manage, by (namespace, name)."""
    found = {}
    for secret in cluster.core.list_secret_for_all_namespaces().items:
        meta = secret.metadata
        if (meta.labels or {}).get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE and CREDENTIAL_LABEL in (meta.labels or {}):
            continue
        found[(meta.namespace, meta.name)] = SecretFingerprint(
            resource_version=meta.resource_version,
            type=secret.type,
            data=json.dumps(secret.data, sort_keys=True),
            labels=json.dumps(meta.labels, sort_keys=True),
            annotations=json.dumps(meta.annotations, sort_keys=True),
        )
    return found


def assert_foreign_secrets_untouched(
    before: dict[tuple[str, str], SecretFingerprint], after: dict[tuple[str, str], SecretFingerprint]
) -> None:
    changed = sorted(key for key in before if after.get(key) != before[key])
    assert not changed, f"Secrets the operator does not own were changed or removed: {changed[:10]}"


def managed_replicas(cluster: Cluster, credential: str | None = None) -> dict[tuple[str, str], client.V1Secret]:
    """Replicas carrying our labels (of one credential, or of any)."""
    selector = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"
    if credential is not None:
        selector += f",{CREDENTIAL_LABEL}={credential}"
    items = cluster.core.list_secret_for_all_namespaces(label_selector=selector).items
    return {(s.metadata.namespace, s.metadata.name): s for s in items}


def service_accounts_in(cluster: Cluster, namespaces: set[str]) -> list[client.V1ServiceAccount]:
    return [
        sa for sa in cluster.core.list_service_account_for_all_namespaces().items
        if sa.metadata.namespace in namespaces
    ]


def pull_secret_entries(account: client.V1ServiceAccount) -> list[str]:
    return [ref.name for ref in account.image_pull_secrets or []]


def recorded_entries(account: client.V1ServiceAccount) -> str | None:
    return (account.metadata.annotations or {}).get(ADDED_PULL_SECRETS_ANNOTATION)


def current_condition(credentials, name: str, kind: str) -> dict[str, Any] | None:
    """A status condition, once the status describes the credential's current generation."""
    body = credentials.get(name)
    status = body.get("status") or {}
    if status.get("observedGeneration") != body["metadata"]["generation"]:
        return None
    return next((c for c in status.get("conditions", []) if c["type"] == kind), None)


def replica_config(secret: client.V1Secret) -> dict[str, Any]:
    return json.loads(base64.b64decode(secret.data[".dockerconfigjson"]))


# -- faults -----------------------------------------------------------------------
def etcd_post(etcd_url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """A call to etcd's v3 JSON gateway (keys and values are base64 there)."""
    request = urllib.request.Request(
        f"{etcd_url}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read())


def compact_etcd(control_plane: LocalControlPlane) -> int:
    """Compact etcd's history up to its current revision; returns that revision.

    Every resourceVersion older than it is gone from etcd, so a watch or list that
    asks for one gets 410 Gone.
    """
    # A range read of any key answers with the store's current revision in its header.
    header = etcd_post(control_plane.etcd_url, "/v3/kv/range", {"key": base64.b64encode(b"/").decode()})
    revision = int(header["header"]["revision"])
    etcd_post(control_plane.etcd_url, "/v3/kv/compaction", {"revision": str(revision), "physical": True})
    return revision
