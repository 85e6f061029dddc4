"""One list of each collection the operator reads, as a plain ClusterSnapshot (kubectl regcred).

`load_snapshot` reads what the operator reads, cluster-wide. `load_namespaced_snapshot`
reads only chosen namespaces, with requests inside each: what a tenant with `edit` in
its own namespaces may read, and nothing of any other namespace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from regcred.config import OperatorConfig
from regcred.controller.caches import Caches, ChangeHandlers
from regcred.controller.state import ClusterSnapshot
from regcred.errors import ForbiddenError, NotFoundError
from regcred.kube.client import JsonObject, KubeClient, object_path
from regcred.kube.informer import Informer, by_name, by_namespace_and_name
from regcred.kube.paths import (
    CREDENTIALS_PATH,
    MANAGED_SECRETS_SELECTOR,
    NAMESPACES_PATH,
    by_credential_key,
    secrets_path,
)
from regcred.kube.projections import (
    CredentialRecord,
    credential_record,
    namespace_info,
    secret_state,
    service_account_state,
    source_secret,
)
from regcred.models import API_GROUP, API_VERSION, TENANT_PLURAL
from regcred.planning.plan import SecretState, ServiceAccountState
from regcred.planning.selection import NamespaceInfo
from regcred.planning.sources import SourceSecret

__all__ = ["NamespacedSnapshot", "load_namespaced_snapshot", "load_snapshot"]

K = TypeVar("K")
V = TypeVar("V")
Loaded = Callable[[Informer[Any, Any]], None]


def _unmanaged_secrets_named(
    client: KubeClient, names: Iterable[str], namespace: str | None = None
) -> dict[tuple[str, str], SecretState]:
    """Secrets with these names that the operator does not manage, in every namespace
    or in one (one list per name)."""
    found: dict[tuple[str, str], SecretState] = {}
    for name in sorted(set(names)):
        listed = client.request("GET", secrets_path(namespace), query={"fieldSelector": f"metadata.name={name}"})
        for item in listed.get("items", []):
            state = secret_state(item)
            if not (state.managed and state.credential):
                found[(state.namespace, state.name)] = state
    return found


def load_snapshot(
    client: KubeClient,
    config: OperatorConfig,
    secret_names: Iterable[str],
    on_loaded: Loaded = lambda informer: None,
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


@dataclass(frozen=True)
class NamespacedSnapshot:
    """A ClusterSnapshot of some namespaces only, and what it could not read."""

    state: ClusterSnapshot
    # Asked for but refused (or gone): nothing of them is in `state`.
    unreadable: tuple[str, ...]
    # Whether the cluster-scoped RegistryCredentials could be read (their claims on a name).
    cluster_credentials_read: bool


def _load(
    client: KubeClient, config: OperatorConfig, path: str, key: Callable[[JsonObject], K],
    project: Callable[[JsonObject], V], name: str, on_loaded: Loaded, label_selector: str | None = None,
) -> dict[K, V]:
    informer: Informer[K, V] = Informer(
        client, path, key=key, project=project, label_selector=label_selector, name=name,
        watch_seconds=config.watch_seconds,
    )
    informer.load()
    on_loaded(informer)
    return dict(informer.snapshot())


@dataclass
class _Gathered:
    namespaces: dict[str, NamespaceInfo]
    credentials: dict[str, CredentialRecord]
    replicas: list[SecretState]
    service_accounts: list[ServiceAccountState]
    sources: dict[tuple[str, str], SourceSecret]
    foreign: dict[tuple[str, str], SecretState]


def _read_namespace(
    client: KubeClient, config: OperatorConfig, namespace: str, secret_names: Iterable[str], on_loaded: Loaded,
    into: _Gathered,
) -> None:
    """Everything the operator reads in one namespace, all or nothing (ForbiddenError, NotFoundError)."""
    info = namespace_info(client.request("GET", f"{NAMESPACES_PATH}/{namespace}"))
    credentials = _load(
        client, config, object_path(f"{API_GROUP}/{API_VERSION}", TENANT_PLURAL, namespace), by_credential_key,
        credential_record, f"tenantregistrycredentials in {namespace}", on_loaded,
    )
    accounts = _load(
        client, config, object_path("v1", "serviceaccounts", namespace), by_namespace_and_name,
        service_account_state, f"serviceaccounts in {namespace}", on_loaded,
    )
    replicas = _load(
        client, config, secrets_path(namespace), by_namespace_and_name, secret_state,
        f"replica secrets in {namespace}", on_loaded, label_selector=MANAGED_SECRETS_SELECTOR,
    )
    # A TenantRegistryCredential's sources are Secrets of its own namespace, as the operator watches them.
    sources = _load(
        client, config, secrets_path(namespace), by_namespace_and_name, source_secret,
        f"source secrets in {namespace}", on_loaded,
    ) if credentials else {}
    foreign = _unmanaged_secrets_named(client, secret_names, namespace)
    into.namespaces[namespace] = info
    into.credentials.update(credentials)
    into.service_accounts.extend(accounts.values())
    into.replicas.extend(replicas.values())
    into.sources.update(sources)
    into.foreign.update(foreign)


def load_namespaced_snapshot(
    client: KubeClient,
    config: OperatorConfig,
    namespaces: Iterable[str],
    secret_names: Iterable[str],
    on_loaded: Loaded = lambda informer: None,
) -> NamespacedSnapshot:
    """What the operator reads, in `namespaces` only, each through requests scoped to it.

    A namespace any of whose reads is refused is left out whole, so that no plan is
    made from half of it. Cluster-scoped RegistryCredentials are read if allowed.
    """
    gathered = _Gathered({}, {}, [], [], {}, {})
    unreadable = []
    for namespace in sorted(set(namespaces)):
        try:
            _read_namespace(client, config, namespace, secret_names, on_loaded, gathered)
        except (ForbiddenError, NotFoundError):
            unreadable.append(namespace)
    try:
        cluster_credentials = _load(
            client, config, CREDENTIALS_PATH, by_name, credential_record, "registrycredentials", on_loaded
        )
    except ForbiddenError:
        cluster_credentials = None
    state = ClusterSnapshot(
        credentials_by_key={**gathered.credentials, **(cluster_credentials or {})},
        namespaces_by_name=gathered.namespaces,
        replicas=tuple(gathered.replicas),
        service_accounts=tuple(gathered.service_accounts),
        source_secrets=gathered.sources,
        foreign=gathered.foreign,
    )
    return NamespacedSnapshot(state, tuple(unreadable), cluster_credentials is not None)
