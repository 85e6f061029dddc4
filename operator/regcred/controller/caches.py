"""The live ClusterState: one informer per collection, indexed, plus the foreign Secrets seen.

Source Secrets are watched in the operator's source namespaces, and in each namespace
where a TenantRegistryCredential lives, from its first to its last one there.

Memory follows what the operator needs, not what tenants create: Secrets (replicas and
sources) are listed and watched as metadata only. A replica's type and data digest are
known from the operator's own writes and reads at a resourceVersion (the applier reads
the one a plan would write to when its version moved); a source Secret's data is read
only when a credential references it (`SourceData`). `keep_data` (for one-shot tools)
lists Secrets whole instead.

Thread ownership: each informer guards its own items; `ForeignSecrets` has its own lock;
the per-namespace source informers are owned by `_tenant_lock`. Callbacks run on the
informers' watch threads and must only enqueue.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from regcred.config import OperatorConfig
from regcred.kube.client import KubeClient
from regcred.kube.informer import Informer, by_name, by_namespace, by_namespace_and_name
from regcred.kube.paths import (
    CREDENTIALS_PATH,
    MANAGED_SECRETS_SELECTOR,
    NAMESPACES_PATH,
    SERVICE_ACCOUNTS_PATH,
    TENANT_CREDENTIALS_PATH,
    by_credential_key,
    secrets_path,
)
from regcred.kube.projections import (
    CredentialRecord,
    credential_record,
    namespace_info,
    resource_version,
    secret_metadata_state,
    secret_state,
    service_account_state,
    source_secret,
    with_known_data,
)
from regcred.planning.plan import SecretState, ServiceAccountState
from regcred.planning.selection import NamespaceInfo
from regcred.controller.sourcedata import SourceData
from regcred.planning.sources import SourceSecret, referenced_secrets

__all__ = ["Caches", "ChangeHandlers", "ForeignSecrets", "source_index_value"]

SECRET_NAME = "secret-name"
SOURCE = "source"
HOME = "home"
NAMESPACE = "namespace"
CREDENTIAL = "credential"
ADDED_ENTRY = "added-entry"

Callback = Callable[[Any, Any, Any], None]


def source_index_value(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


@dataclass(frozen=True)
class ChangeHandlers:
    """What to call on each collection's changes; None for a cache nobody reacts to."""

    credential: Callback | None = None
    namespace: Callback | None = None
    service_account: Callback | None = None
    replica: Callback | None = None
    source: Callback | None = None


class ForeignSecrets:
    """Secrets holding a wanted name that the operator does not manage (learnt from a 409).

    They are not watched (that would mean every Secret); full passes re-read them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: dict[tuple[str, str], SecretState] = {}

    def get(self, namespace: str, name: str) -> SecretState | None:
        with self._lock:
            return self._secrets.get((namespace, name))

    def named(self, name: str) -> list[tuple[str, str]]:
        with self._lock:
            return [key for key in self._secrets if key[1] == name]

    def put(self, state: SecretState) -> None:
        with self._lock:
            self._secrets[(state.namespace, state.name)] = state

    def drop(self, namespace: str, name: str) -> None:
        with self._lock:
            self._secrets.pop((namespace, name), None)


class Caches:
    """Informers for everything the controller reads; satisfies `ClusterState`."""

    def __init__(
        self, client: KubeClient, config: OperatorConfig, handlers: ChangeHandlers, keep_data: bool = False
    ) -> None:
        self._client = client
        self._config = config
        self._handlers = handlers
        self._keep_data = keep_data
        self.source_data = SourceData(client)

        def by_secret_name(_: str, record: CredentialRecord) -> Iterable[str]:
            return (record.secret_name,) if record.secret_name else ()

        def by_source(_: str, record: CredentialRecord) -> Iterable[str]:
            if not record.usable or record.spec is None:
                return ()
            refs = referenced_secrets(record.spec, record.namespace or config.operator_namespace)
            return [source_index_value(*ref) for ref in refs]

        watch = config.watch_seconds
        credential_indexers = {SECRET_NAME: by_secret_name, SOURCE: by_source}
        self.credential_informer: Informer[str, CredentialRecord] = Informer(
            client, CREDENTIALS_PATH, key=by_name, project=credential_record, on_change=handlers.credential,
            indexers=credential_indexers, name="registrycredentials", watch_seconds=watch,
        )
        self.tenant_credential_informer: Informer[str, CredentialRecord] = Informer(
            client, TENANT_CREDENTIALS_PATH, key=by_credential_key, project=credential_record,
            on_change=self._tenant_credential_changed,
            indexers={**credential_indexers, HOME: lambda _, record: (record.namespace,)},
            name="tenantregistrycredentials", watch_seconds=watch,
        )
        self.namespace_informer: Informer[str, NamespaceInfo] = Informer(
            client, NAMESPACES_PATH, key=by_name, project=namespace_info, on_change=handlers.namespace,
            name="namespaces", watch_seconds=watch,
        )
        self.service_account_informer: Informer[tuple[str, str], ServiceAccountState] = Informer(
            client, SERVICE_ACCOUNTS_PATH, key=by_namespace_and_name, project=service_account_state,
            on_change=handlers.service_account,
            indexers={NAMESPACE: by_namespace, ADDED_ENTRY: lambda _, account: account.recording_credentials},
            name="serviceaccounts", watch_seconds=watch,
        )
        self.replica_informer: Informer[tuple[str, str], SecretState] = Informer(
            client, secrets_path(), key=by_namespace_and_name,
            project=secret_state if keep_data else secret_metadata_state, on_change=handlers.replica,
            label_selector=MANAGED_SECRETS_SELECTOR, metadata_only=not keep_data, carry_over=with_known_data,
            indexers={NAMESPACE: by_namespace, CREDENTIAL: lambda _, s: (s.credential,) if s.credential else ()},
            name="replica secrets", watch_seconds=watch,
        )
        # Each Secret's data (`keep_data`), else only its resourceVersion.
        self._sources_by_namespace = {
            namespace: self._source_informer(namespace) for namespace in sorted(config.source_namespaces)
        }
        self.source_informers: list[Informer[tuple[str, str], Any]] = list(self._sources_by_namespace.values())
        self.foreign = ForeignSecrets()
        self._tenant_lock = threading.Lock()
        self._tenant_sources: dict[str, Informer[tuple[str, str], Any]] = {}
        self._running = False

    def _source_informer(self, namespace: str) -> Informer[tuple[str, str], Any]:
        return Informer(
            self._client, secrets_path(namespace), key=by_namespace_and_name,
            project=source_secret if self._keep_data else resource_version,
            on_change=self._source_changed, name=f"source secrets in {namespace}",
            watch_seconds=self._config.watch_seconds, metadata_only=not self._keep_data,
        )

    def _source_changed(self, key: tuple[str, str], old: Any, new: Any) -> None:
        if not self._keep_data:
            self.source_data.discard_older(key, new)
        if self._handlers.source is not None:
            self._handlers.source(key, old, new)

    def _source_version(self, key: tuple[str, str]) -> str | None:
        """The resourceVersion the source caches hold for a Secret (None: not there or not watched)."""
        informer = self._sources_by_namespace.get(key[0])
        if informer is None:
            with self._tenant_lock:
                informer = self._tenant_sources.get(key[0])
        return None if informer is None else informer.get(key)

    def read_sources(self, record: CredentialRecord) -> None:
        """Read the data of the source Secrets `record` references that changed since last read."""
        if self._keep_data or record.spec is None:
            return
        refs = referenced_secrets(record.spec, record.namespace or self._config.operator_namespace)
        self.source_data.refresh(refs, self._source_version)

    def _tenant_credential_changed(self, key: str, old: CredentialRecord | None, new: CredentialRecord | None) -> None:
        for record in (old, new):
            if record is not None and record.namespace is not None:
                self._track_tenant_sources(record.namespace)
        if self._handlers.credential is not None:
            self._handlers.credential(key, old, new)

    def _track_tenant_sources(self, namespace: str) -> None:
        """Watch Secrets in a namespace while TenantRegistryCredentials live there."""
        if namespace in self._config.source_namespaces:
            return
        wanted = bool(self.tenant_credential_informer.by_index(HOME, namespace))
        with self._tenant_lock:
            informer = self._tenant_sources.get(namespace)
            if wanted and informer is None:
                informer = self._tenant_sources[namespace] = self._source_informer(namespace)
                if self._running:
                    informer.start()
            elif not wanted and informer is not None:
                del self._tenant_sources[namespace]
                informer.stop()

    def start(self) -> None:
        with self._tenant_lock:
            self._running = True
        for informer in self.informers:
            informer.start()

    def stop(self) -> None:
        """Stop every watch, the tenants' source Secrets' too; none starts after this."""
        with self._tenant_lock:
            self._running = False
        for informer in [*self.informers, *self.tenant_source_informers]:
            informer.stop()

    def load(self, on_loaded: Callable[[Informer[Any, Any]], None]) -> None:
        """Fill every cache with one list and no watch (tenants' Secrets after their credentials)."""
        for informer in self.informers:
            informer.load()
            on_loaded(informer)
        for informer in self.tenant_source_informers:
            informer.load()
            on_loaded(informer)

    def sources_synced(self, namespace: str) -> bool:
        """Whether the Secrets of a TenantRegistryCredential's namespace are in the cache yet."""
        with self._tenant_lock:
            informer = self._tenant_sources.get(namespace)
        return informer is None or informer.synced.is_set()

    @property
    def tenant_source_informers(self) -> list[Informer[tuple[str, str], Any]]:
        with self._tenant_lock:
            return list(self._tenant_sources.values())

    @property
    def informers(self) -> list[Informer[Any, Any]]:
        """The informers watched from the start (not the tenants' source Secrets)."""
        return [
            self.credential_informer, self.tenant_credential_informer, self.namespace_informer,
            self.service_account_informer, self.replica_informer, *self.source_informers,
        ]

    # -- ClusterState ----------------------------------------------------------
    def credential(self, key: str) -> CredentialRecord | None:
        return self.credential_informer.get(key) or self.tenant_credential_informer.get(key)

    def credentials(self) -> Iterable[CredentialRecord]:
        return [
            *self.credential_informer.snapshot().values(), *self.tenant_credential_informer.snapshot().values()
        ]

    def _either_by_index(self, index: str, value: str) -> list[CredentialRecord]:
        return [
            *self.credential_informer.by_index(index, value), *self.tenant_credential_informer.by_index(index, value)
        ]

    def credentials_with_secret_name(self, secret_name: str) -> list[CredentialRecord]:
        return self._either_by_index(SECRET_NAME, secret_name)

    def credentials_reading(self, namespace: str, name: str) -> list[CredentialRecord]:
        return self._either_by_index(SOURCE, source_index_value(namespace, name))

    def credentials_living_in(self, namespace: str) -> list[CredentialRecord]:
        """The TenantRegistryCredentials whose home is `namespace`."""
        return self.tenant_credential_informer.by_index(HOME, namespace)

    def namespace(self, name: str) -> NamespaceInfo | None:
        return self.namespace_informer.get(name)

    def namespaces(self) -> Mapping[str, NamespaceInfo]:
        return self.namespace_informer.snapshot()

    def replicas_in(self, namespace: str) -> list[SecretState]:
        return self.replica_informer.by_index(NAMESPACE, namespace)

    def namespaces_with_replicas_of(self, credential: str) -> set[str]:
        return {replica.namespace for replica in self.replica_informer.by_index(CREDENTIAL, credential)}

    def service_accounts_in(self, namespace: str) -> list[ServiceAccountState]:
        return self.service_account_informer.by_index(NAMESPACE, namespace)

    def namespaces_with_entries_of(self, credential: str) -> set[str]:
        return {account.namespace for account in self.service_account_informer.by_index(ADDED_ENTRY, credential)}

    def credentials_with_traces(self) -> set[str]:
        """The keys that replicas' labels or ServiceAccounts' records name, existing or not."""
        return {
            *self.replica_informer.index_values(CREDENTIAL),
            *self.service_account_informer.index_values(ADDED_ENTRY),
        }

    def sources(self) -> Mapping[tuple[str, str], SourceSecret]:
        """The source Secrets read (`read_sources`) and still current; every one with `keep_data`."""
        if not self._keep_data:
            return self.source_data.current(self._source_version)
        merged: dict[tuple[str, str], SourceSecret] = {}
        for informer in [*self.source_informers, *self.tenant_source_informers]:
            merged.update(informer.snapshot())
        return merged

    def foreign_secret(self, namespace: str, name: str) -> SecretState | None:
        return self.foreign.get(namespace, name)
