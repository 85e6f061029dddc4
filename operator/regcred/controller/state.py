"""What the controller knows of the cluster, behind one interface: live caches or a snapshot.

The operator plans from its informer caches; `kubectl regcred` plans from one list of
each collection. Both answer the same questions, so one gathering code serves both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from regcred.kube.projections import CredentialRecord
from regcred.planning.plan import SecretState, ServiceAccountState
from regcred.planning.selection import NamespaceInfo
from regcred.planning.sources import SourceSecret

__all__ = ["ClusterSnapshot", "ClusterState"]


class ClusterState(Protocol):
    def credential(self, key: str) -> CredentialRecord | None:
        """A credential of either kind, by its key (`CredentialRecord.key`)."""
        ...

    def credentials(self) -> Iterable[CredentialRecord]: ...

    def credentials_with_secret_name(self, secret_name: str) -> list[CredentialRecord]: ...

    def namespace(self, name: str) -> NamespaceInfo | None: ...

    def namespaces(self) -> Mapping[str, NamespaceInfo]: ...

    def replicas_in(self, namespace: str) -> list[SecretState]:
        """The Secrets with the managed label in one namespace."""
        ...

    def namespaces_with_replicas_of(self, credential: str) -> set[str]: ...

    def service_accounts_in(self, namespace: str) -> list[ServiceAccountState]: ...

    def namespaces_with_entries_of(self, credential: str) -> set[str]:
        """Namespaces where a ServiceAccount records an entry as added by this credential."""
        ...

    def sources(self) -> Mapping[tuple[str, str], SourceSecret]: ...

    def foreign_secret(self, namespace: str, name: str) -> SecretState | None:
        """A Secret the operator does not manage that holds a name it wants, if known."""
        ...


@dataclass(frozen=True)
class ClusterSnapshot:
    """One list of everything the operator reads, as plain values (for one-shot tools)."""

    credentials_by_key: Mapping[str, CredentialRecord]
    namespaces_by_name: Mapping[str, NamespaceInfo]
    replicas: tuple[SecretState, ...]
    service_accounts: tuple[ServiceAccountState, ...]
    source_secrets: Mapping[tuple[str, str], SourceSecret]
    # Unmanaged Secrets with the names the tool asked about.
    foreign: Mapping[tuple[str, str], SecretState] = field(default_factory=dict)

    def credential(self, key: str) -> CredentialRecord | None:
        return self.credentials_by_key.get(key)

    def credentials(self) -> Iterable[CredentialRecord]:
        return self.credentials_by_key.values()

    def credentials_with_secret_name(self, secret_name: str) -> list[CredentialRecord]:
        return [record for record in self.credentials() if record.secret_name == secret_name]

    def namespace(self, name: str) -> NamespaceInfo | None:
        return self.namespaces_by_name.get(name)

    def namespaces(self) -> Mapping[str, NamespaceInfo]:
        return self.namespaces_by_name

    def replicas_in(self, namespace: str) -> list[SecretState]:
        return [replica for replica in self.replicas if replica.namespace == namespace]

    def namespaces_with_replicas_of(self, credential: str) -> set[str]:
        return {replica.namespace for replica in self.replicas if replica.credential == credential}

    def service_accounts_in(self, namespace: str) -> list[ServiceAccountState]:
        return [account for account in self.service_accounts if account.namespace == namespace]

    def namespaces_with_entries_of(self, credential: str) -> set[str]:
        return {account.namespace for account in self.service_accounts if credential in account.recording_credentials}

    def sources(self) -> Mapping[tuple[str, str], SourceSecret]:
        return self.source_secrets

    def foreign_secret(self, namespace: str, name: str) -> SecretState | None:
        return self.foreign.get((namespace, name))
