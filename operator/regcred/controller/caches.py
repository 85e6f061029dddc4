"""The live ClusterState: one informer per collection, indexed, plus the foreign Secrets seen.

Thread ownership: each informer guards its own items; `ForeignSecrets` has its own lock.
Callbacks run on the informers' watch threads and must only enqueue.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from regcred.config import OperatorConfig
from regcred.kube.client import KubeClient
from regcred.kube.informer import Informer, by_name, by_namespace, by_namespace_and_name
from regcred.kube.resources import (
    CREDENTIALS_PATH,
    MANAGED_SECRETS_SELECTOR,
    NAMESPACES_PATH,
    SERVICE_ACCOUNTS_PATH,
    CredentialRecord,
    credential_record,
    namespace_info,
    secret_state,
    secrets_path,
    service_account_state,
    source_secret,
)
from regcred.planning.plan import SecretState, ServiceAccountState
from regcred.planning.selection import NamespaceInfo
from regcred.planning.sources import SourceSecret, referenced_secrets

__all__ = ["Caches", "ChangeHandlers", "ForeignSecrets", "source_index_value"]

SECRET_NAME = "secret-name"
SOURCE = "source"
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

    def __init__(self, client: KubeClient, config: OperatorConfig, handlers: ChangeHandlers) -> None:
        def by_secret_name(_: str, record: CredentialRecord) -> Iterable[str]:
            return (record.secret_name,) if record.secret_name else ()

        def by_source(_: str, record: CredentialRecord) -> Iterable[str]:
            if record.spec is None:
                return ()
            refs = referenced_secrets(record.spec, config.operator_namespace)
            return [source_index_value(*ref) for ref in refs]

        watch = config.watch_seconds
        self.credential_informer: Informer[str, CredentialRecord] = Informer(
            client, CREDENTIALS_PATH, key=by_name, project=credential_record, on_change=handlers.credential,
            indexers={SECRET_NAME: by_secret_name, SOURCE: by_source},
            name="registrycredentials", watch_seconds=watch,
        )
        self.namespace_informer: Informer[str, NamespaceInfo] = Informer(
            client, NAMESPACES_PATH, key=by_name, project=namespace_info, on_change=handlers.namespace,
            name="namespaces", watch_seconds=watch,
        )
        self.service_account_informer: Informer[tuple[str, str], ServiceAccountState] = Informer(
            client, SERVICE_ACCOUNTS_PATH, key=by_namespace_and_name, project=service_account_state,
            on_change=handlers.service_account,
            indexers={NAMESPACE: by_namespace, ADDED_ENTRY: lambda _, account: account.added_by_operator},
            name="serviceaccounts", watch_seconds=watch,
        )
        self.replica_informer: Informer[tuple[str, str], SecretState] = Informer(
            client, secrets_path(), key=by_namespace_and_name, project=secret_state, on_change=handlers.replica,
            label_selector=MANAGED_SECRETS_SELECTOR,
            indexers={NAMESPACE: by_namespace, CREDENTIAL: lambda _, s: (s.credential,) if s.credential else ()},
            name="replica secrets", watch_seconds=watch,
        )
        self.source_informers: list[Informer[tuple[str, str], SourceSecret]] = [
            Informer(
                client, secrets_path(namespace), key=by_namespace_and_name, project=source_secret,
                on_change=handlers.source, name=f"source secrets in {namespace}", watch_seconds=watch,
            )
            for namespace in sorted(config.source_namespaces)
        ]
        self.foreign = ForeignSecrets()

    @property
    def informers(self) -> list[Informer[Any, Any]]:
        return [
            self.credential_informer, self.namespace_informer, self.service_account_informer,
            self.replica_informer, *self.source_informers,
        ]

    # -- ClusterState ----------------------------------------------------------
    def credential(self, name: str) -> CredentialRecord | None:
        return self.credential_informer.get(name)

    def credentials(self) -> Iterable[CredentialRecord]:
        return self.credential_informer.snapshot().values()

    def credentials_with_secret_name(self, secret_name: str) -> list[CredentialRecord]:
        return self.credential_informer.by_index(SECRET_NAME, secret_name)

    def credentials_reading(self, namespace: str, name: str) -> list[CredentialRecord]:
        return self.credential_informer.by_index(SOURCE, source_index_value(namespace, name))

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

    def namespaces_with_entries_for(self, secret_name: str) -> set[str]:
        return {account.namespace for account in self.service_account_informer.by_index(ADDED_ENTRY, secret_name)}

    def sources(self) -> Mapping[tuple[str, str], SourceSecret]:
        merged: dict[tuple[str, str], SourceSecret] = {}
        for informer in self.source_informers:
            merged.update(informer.snapshot())
        return merged

    def foreign_secret(self, namespace: str, name: str) -> SecretState | None:
        return self.foreign.get(namespace, name)
