"""Two RegistryCredentials fight over one secret name while namespaces come and go.

The older credential must keep the name everywhere, the younger must report the
conflict, and nobody may rewrite the contested Secrets back and forth: a watch on
them counts every write the API server saw, and once the churn stops nothing moves.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import Counter
from typing import Self

from harness import env_int, pull_secret_entries, service_accounts_in
from kubernetes import client

from e2e.conftest import poll
from e2e.objects import tenant_spec
from regcred.planning.plan import CREDENTIAL_LABEL

CHURN_SECONDS = env_int("REGCRED_CHURN_SECONDS", 8)
SETTLE_TIMEOUT = 90.0


class SecretWrites:
    """Every ADDED/MODIFIED/DELETED event of Secrets with one name, in any namespace."""

    def __init__(self, cluster, name: str) -> None:
        self.api = client.CoreV1Api(cluster.new_api_client())
        self.name = name
        self.events: list[tuple[str, str, str | None]] = []  # (type, namespace, credential label)
        self.error: BaseException | None = None
        self._stopping = False
        listed = self.api.list_secret_for_all_namespaces(field_selector=f"metadata.name={name}")
        # The raw response, so that another thread can end the stream at once.
        self._response = self.api.list_secret_for_all_namespaces(
            field_selector=f"metadata.name={name}",
            resource_version=listed.metadata.resource_version,
            watch=True,
            _preload_content=False,
        )
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            pending = b""
            for chunk in self._response.stream(decode_content=True):
                *lines, pending = (pending + chunk).split(b"\n")
                for document in filter(None, lines):
                    event = json.loads(document)
                    meta = event["object"]["metadata"]
                    self.events.append((event["type"], meta.get("namespace"), (meta.get("labels") or {}).get(CREDENTIAL_LABEL)))
        except Exception as error:  # noqa: BLE001 - reported by __exit__ unless we ended the stream
            if not self._stopping:
                self.error = error

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stopping = True
        self._response.shutdown()
        self._thread.join(10)
        self._response.release_conn()
        assert self.error is None, f"the watch broke, writes may be missing: {self.error!r}"


def test_older_credential_keeps_the_name_under_churn_without_write_ping_pong(
    cluster, make_namespace, credentials, sources, operator_process
):
    rng = random.Random(env_int("REGCRED_SOAK_SEED", 0) or None)
    tenant = uuid.uuid4().hex[:8]
    secret_name = f"contested-{tenant}"
    namespaces = [make_namespace("churn", labels={"tenant": tenant}) for _ in range(5)]
    operator_process.start()
    older = credentials.create(tenant_spec(tenant, sources.create({"password": "older"}), secretName=secret_name))
    credentials.wait_ready(older)
    time.sleep(1.1)  # creationTimestamp has one-second resolution
    younger = credentials.create(tenant_spec(tenant, sources.create({"password": "younger"}), secretName=secret_name))

    with SecretWrites(cluster, secret_name) as writes:
        deadline = time.monotonic() + CHURN_SECONDS
        while time.monotonic() < deadline:
            if rng.random() < 0.3:
                namespaces.append(make_namespace("churn", labels={"tenant": tenant}))
            else:
                namespace = rng.choice(namespaces)
                label = rng.choice([tenant, "elsewhere"])
                cluster.core.patch_namespace(namespace, {"metadata": {"labels": {"tenant": label}}})
            time.sleep(rng.uniform(0.05, 0.3))
        targeted = {
            ns.metadata.name
            for ns in cluster.core.list_namespace(label_selector=f"tenant={tenant}").items
        }

        def settled():
            replicas = {
                s.metadata.namespace: s
                for s in cluster.core.list_secret_for_all_namespaces(field_selector=f"metadata.name={secret_name}").items
            }
            status = credentials.status(younger)
            conflicts = {issue["namespace"] for issue in status.get("conflictedNamespaces", [])}
            # On a loaded machine the controller-manager can create default
            # ServiceAccounts after the replicas; until every one exists and the
            # targeted ones are patched, a later write is not ping-pong.
            defaults = {
                sa.metadata.namespace: pull_secret_entries(sa)
                for sa in service_accounts_in(cluster, set(namespaces))
                if sa.metadata.name == "default"
            }
            return (
                set(defaults) == set(namespaces)
                and all(defaults[namespace] == [secret_name] for namespace in targeted)
                and set(replicas) == targeted
                and all(s.metadata.labels[CREDENTIAL_LABEL] == older for s in replicas.values())
                and conflicts == targeted
                and status.get("synced") == f"0/{len(targeted)}"
            )

        poll(settled, timeout=SETTLE_TIMEOUT, what="the churn to settle")
        settled_at = len(writes.events)
        versions = resource_versions(cluster, secret_name, set(namespaces))
        time.sleep(2 * 5 + 1)  # two resync periods of the operator (--resync-seconds 5)
        assert resource_versions(cluster, secret_name, set(namespaces)) == versions, "writes after settling"
        assert len(writes.events) == settled_at

    kinds = Counter(kind for kind, _, _ in writes.events)
    writers = Counter(label for kind, _, label in writes.events if kind != "DELETED")
    print(f"churn: {len(namespaces)} namespaces, {len(targeted)} targeted at the end; writes seen {dict(kinds)}")
    assert set(writers) <= {older}, f"the younger credential wrote the contested Secret: {writers}"
    assert kinds["MODIFIED"] == 0, "a replica was rewritten: ping-pong or needless updates"
    for account in service_accounts_in(cluster, targeted):
        if account.metadata.name == "default":
            assert pull_secret_entries(account) == [secret_name], account.metadata.namespace
    assert credentials.condition(younger, "Ready")["reason"] == "NamespacesConflicted"


def resource_versions(cluster, secret_name: str, namespaces: set[str]) -> dict[str, str]:
    versions = {
        f"secret {s.metadata.namespace}": s.metadata.resource_version
        for s in cluster.core.list_secret_for_all_namespaces(field_selector=f"metadata.name={secret_name}").items
    }
    for account in service_accounts_in(cluster, namespaces):
        versions[f"sa {account.metadata.namespace}/{account.metadata.name}"] = account.metadata.resource_version
    return versions
