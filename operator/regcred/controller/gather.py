"""Gathering a plan's inputs from a ClusterState: no I/O, no locks of its own.

Which namespaces a credential touches, the view of one namespace, the content its
sources give, and which credentials a change concerns (so an event enqueues only them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from regcred.config import OperatorConfig
from regcred.controller.state import ClusterState
from regcred.kube.projections import CredentialRecord
from regcred.models import KIND
from regcred.planning.plan import CredentialIntent, NamespaceView, SecretState, ServiceAccountState, credential_owner
from regcred.planning.selection import Claimant, NamespaceInfo, claim_winner, selects_namespace, within_tenant
from regcred.planning.sources import ResolvedContent, resolve_content

__all__ = [
    "Scope",
    "cleanup_intent",
    "cleanup_namespaces",
    "cleanup_view",
    "credentials_for_namespace",
    "credentials_for_replica",
    "credentials_for_service_account",
    "intent",
    "leftover_namespaces",
    "leftovers_intent",
    "leftovers_view",
    "namespace_view",
    "namespaces_touched",
    "resolve",
    "sharers_to_recheck",
    "targets",
]


@dataclass(frozen=True)
class Scope:
    """The operator's settings that bound every credential's selection."""

    excluded: frozenset[str]
    tenant_label: str | None = None

    @classmethod
    def of(cls, config: OperatorConfig) -> Scope:
        return cls(config.excluded_namespaces, config.tenant_label)


def targets(state: ClusterState, record: CredentialRecord, info: NamespaceInfo | None, scope: Scope) -> bool:
    """Whether the credential wants its replica in this namespace now.

    A TenantRegistryCredential never reaches past its tenant, whatever its spec selects.
    """
    if info is None or not record.usable or record.spec is None or record.deleting:
        return False
    if record.namespace is not None and not within_tenant(
        scope.tenant_label, state.namespace(record.namespace), record.namespace, info
    ):
        return False
    return selects_namespace(record.spec, info, scope.excluded)


def holder(
    state: ClusterState, record: CredentialRecord, info: NamespaceInfo | None, targeted: bool, scope: Scope
) -> str | None:
    """The other credential that holds our secret name in this namespace, if any (see Claimant)."""
    assert record.secret_name is not None
    claimants = [
        Claimant(other.tenant_owned, other.creation_timestamp, other.key)
        for other in state.credentials_with_secret_name(record.secret_name)
        if other.key != record.key and targets(state, other, info, scope)
    ]
    if targeted:
        claimants.append(Claimant(record.tenant_owned, record.creation_timestamp, record.key))
    winner = claim_winner(claimants)
    return winner.name if winner is not None and winner.name != record.key else None


def namespace_view(state: ClusterState, record: CredentialRecord, namespace: str, scope: Scope) -> NamespaceView:
    """Everything plan_namespace needs to know about one namespace, for one credential."""
    assert record.secret_name is not None
    info = state.namespace(namespace)
    targeted = targets(state, record, info, scope)
    secrets = {
        replica.name: replica
        for replica in state.replicas_in(namespace)
        if replica.credential == record.key or replica.name == record.secret_name
    }
    foreign = state.foreign_secret(namespace, record.secret_name)
    if foreign is not None and record.secret_name not in secrets:
        secrets[record.secret_name] = foreign
    return NamespaceView(
        namespace=namespace,
        targeted=targeted,
        claimed_by=holder(state, record, info, targeted, scope),
        secrets=secrets,
        service_accounts=tuple(state.service_accounts_in(namespace)),
    )


def cleanup_intent(record: CredentialRecord) -> CredentialIntent:
    # Whatever its spec: replicas are known by their label and entries by their records,
    # both of which name the credential's key.
    return leftovers_intent(record.key, record.uid, record.secret_name or record.name)


def leftovers_intent(key: str, uid: str, secret_name: str) -> CredentialIntent:
    """What a credential that wants nothing any more plans with: remove all of its own."""
    return CredentialIntent(name=key, uid=uid, secret_name=secret_name, service_account_globs=())


def cleanup_view(state: ClusterState, record: CredentialRecord, namespace: str, scope: Scope) -> NamespaceView:
    """One namespace as cleanup sees it: nothing targeted, only our own replicas."""
    # A holder of our name takes our copy over rather than see it deleted and re-created.
    claimed_by = holder(state, record, state.namespace(namespace), False, scope) if record.secret_name else None
    return leftovers_view(state, record.key, namespace, claimed_by)


def leftovers_view(state: ClusterState, key: str, namespace: str, claimed_by: str | None = None) -> NamespaceView:
    """One namespace as a credential that wants nothing sees it: only what carries its key."""
    return NamespaceView(
        namespace=namespace,
        targeted=False,
        claimed_by=claimed_by,
        secrets={s.name: s for s in state.replicas_in(namespace) if s.credential == key},
        service_accounts=tuple(state.service_accounts_in(namespace)),
    )


def cleanup_namespaces(state: ClusterState, record: CredentialRecord) -> set[str]:
    """Namespaces where the credential has a replica or a ServiceAccount record of its own."""
    return leftover_namespaces(state, record.key)


def leftover_namespaces(state: ClusterState, key: str) -> set[str]:
    """Namespaces where the credential `key` has a replica or a ServiceAccount record.

    An old name-only record counts where the credential's copy of that name is, so the
    replicas cover it; no other credential's records can bring a namespace in.
    """
    return state.namespaces_with_replicas_of(key) | state.namespaces_with_entries_of(key)


def namespaces_touched(state: ClusterState, record: CredentialRecord, scope: Scope) -> set[str]:
    """Every namespace the credential targets or has left something in: for a
    TenantRegistryCredential, its tenant's namespaces and where it recorded something."""
    return _targeted_by(state, record, scope) | cleanup_namespaces(state, record)


def _targeted_by(state: ClusterState, record: CredentialRecord | None, scope: Scope) -> set[str]:
    if record is None or not record.usable:
        return set()
    return {name for name, info in state.namespaces().items() if targets(state, record, info, scope)}


def resolve(state: ClusterState, record: CredentialRecord, config: OperatorConfig) -> ResolvedContent:
    """The content from the credential's sources: the operator's source namespaces, or a
    TenantRegistryCredential's own namespace and no other."""
    assert record.spec is not None
    if record.namespace is not None:
        return resolve_content(record.spec, state.sources(), record.namespace, frozenset({record.namespace}))
    return resolve_content(record.spec, state.sources(), config.operator_namespace, config.source_namespaces)


def intent(record: CredentialRecord, content: ResolvedContent) -> CredentialIntent:
    assert record.spec is not None and record.secret_name is not None
    return CredentialIntent(
        name=record.key,
        uid=record.uid,
        secret_name=record.secret_name,
        service_account_globs=tuple(record.spec.service_accounts),
        docker_config=content.docker_config,
        content_hash=content.content_hash,
        # A namespaced owner could only own copies in its own namespace (the garbage
        # collector deletes the others): tenant-owned copies go by the finalizer alone.
        owner=None if record.tenant_owned else credential_owner(KIND, record.name, record.uid),
    )


# -- which credentials an event concerns ---------------------------------------------
def _targeting(state: ClusterState, infos: Iterable[NamespaceInfo | None], scope: Scope) -> set[str]:
    return {
        record.key
        for record in state.credentials()
        if any(targets(state, record, info, scope) for info in infos)
    }


def credentials_for_namespace(
    state: ClusterState, namespace: str, infos: Iterable[NamespaceInfo | None], scope: Scope
) -> set[str]:
    """Credentials that select the namespace (before or after a change) or serve it now.

    A change to the home namespace of TenantRegistryCredentials (its tenant label) moves
    their whole tenant: the caller resyncs those in full (`credentials_living_in`).
    """
    serving = {replica.credential for replica in state.replicas_in(namespace) if replica.credential}
    recording = {key for account in state.service_accounts_in(namespace) for key in account.recording_credentials}
    return _targeting(state, infos, scope) | serving | recording


def credentials_for_replica(
    state: ClusterState, namespace: str, replicas: Iterable[SecretState | None], scope: Scope
) -> set[str]:
    """Credentials a replica's change concerns: its owner's, and those that want its name here."""
    present = [replica for replica in replicas if replica is not None]
    owners = {replica.credential for replica in present if replica.credential}
    info = state.namespace(namespace)
    wanting = {
        record.key
        for name in {replica.name for replica in present}
        for record in state.credentials_with_secret_name(name)
        if targets(state, record, info, scope)
    }
    return owners | wanting


def credentials_for_service_account(
    state: ClusterState, namespace: str, accounts: Iterable[ServiceAccountState | None], scope: Scope
) -> set[str]:
    """Credentials that target the account's namespace, or whose records it carried or carries."""
    present = [account for account in accounts if account is not None]
    recording = {key for account in present for key in account.recording_credentials}
    old_records = {
        entry.secret_name for account in present for entry in account.added_by_operator if entry.credential is None
    }
    # An old name-only record belongs to the owner of the copy of that name.
    copy_owners = {
        replica.credential
        for replica in state.replicas_in(namespace)
        if replica.name in old_records and replica.credential
    }
    return _targeting(state, [state.namespace(namespace)], scope) | recording | copy_owners


def sharers_to_recheck(
    state: ClusterState, old: CredentialRecord | None, new: CredentialRecord | None, scope: Scope
) -> set[tuple[str, str]]:
    """(credential, namespace) pairs to plan again after a credential changed: the other
    credentials with its secret name (before or after), in the namespaces the changed one
    reaches where they could serve or have left something. A claim on a name can change
    hands only there, so a tenant's credential never makes others pass over the cluster.
    """
    changed = new or old
    assert changed is not None
    names = {record.secret_name for record in (old, new) if record is not None and record.secret_name}
    others = {
        other.key: other for name in names for other in state.credentials_with_secret_name(name)
        if other.key != changed.key
    }
    if not others:
        return set()  # the usual case: nobody shares the name, no namespace to look at
    reach = _targeted_by(state, old, scope) | _targeted_by(state, new, scope) | cleanup_namespaces(state, changed)
    found = set()
    for other in others.values():
        left = cleanup_namespaces(state, other)
        found |= {
            (other.key, namespace)
            for namespace in reach
            if namespace in left or targets(state, other, state.namespace(namespace), scope)
        }
    return found
