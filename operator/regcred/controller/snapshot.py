"""One list of each collection the operator reads, as a plain ClusterSnapshot (kubectl regcred)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from regcred.config import OperatorConfig
from regcred.controller.caches import Caches, ChangeHandlers
from regcred.controller.state import ClusterSnapshot
from regcred.kube.client import KubeClient
from regcred.kube.informer import Informer
from regcred.kube.resources import secret_state, secrets_path
from regcred.planning.plan import SecretState

__all__ = ["load_snapshot"]


def _unmanaged_secrets_named(client: KubeClient, names: Iterable[str]) -> dict[tuple[str, str], SecretState]:
    """Secrets with these names that the operator does not manage, in every namespace (one list each)."""
    found: dict[tuple[str, str], SecretState] = {}
    for name in sorted(set(names)):
        listed = client.request("GET", secrets_path(), query={"fieldSelector": f"metadata.name={name}"})
        for item in listed.get("items", []):
            state = secret_state(item)
            if not (state.managed and state.credential):
                found[(state.namespace, state.name)] = state
    return found


def load_snapshot(
    client: KubeClient,
    config: OperatorConfig,
    secret_names: Iterable[str],
    on_loaded: Callable[[Informer], None] = lambda informer: None,
) -> ClusterSnapshot:
    """List what the operator would watch, once, and the unmanaged Secrets named `secret_names`."""
    # Whole Secrets: a preview plans from replicas' data and from sources no credential reads yet.
    caches = Caches(client, config, ChangeHandlers(), keep_data=True)
    caches.load(on_loaded)
    return ClusterSnapshot(
        credentials_by_key={record.key: record for record in caches.credentials()},
        namespaces_by_name=caches.namespace_informer.snapshot(),
        replicas=tuple(caches.replica_informer.snapshot().values()),
        service_accounts=tuple(caches.service_account_informer.snapshot().values()),
        source_secrets=caches.sources(),
        foreign=_unmanaged_secrets_named(client, secret_names),
    )
