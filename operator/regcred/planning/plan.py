"""Decide, for one credential and one namespace, which writes bring the namespace to the wanted state.

Pure: the caller gathers a `NamespaceView` from its caches; `plan_namespace`
returns a frozen `NamespacePlan` of writes (in order) and the namespace's
outcome. Writes carry the resourceVersion they were planned against, so a
stale view costs a 409 and a re-plan, never a lost update.

Ownership rules, which keep the operator from touching what it does not own:
- a Secret is ours when it carries our managed-by label and our credential label;
  anything else with the wanted name is a conflict and is never written;
- an imagePullSecrets entry is the operator's only when the ServiceAccount's
  `regcred.dev/added-pull-secrets` annotation records it, and each record names the
  credential that added it (`name=credential`). A credential removes only its own
  records; the entry goes when no record of it is left. A record in the old name-only
  format is attributed to the credential whose copy of that name is in the namespace
  (our labels say whose it is), and to nobody when there is none.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from regcred.models import API_GROUP, API_VERSION
from regcred.planning.selection import matches_any_glob
from regcred.planning.sources import DOCKER_CONFIG_KEY, DOCKER_CONFIG_TYPE

__all__ = [
    "ADDED_PULL_SECRETS_ANNOTATION",
    "CONTENT_HASH_ANNOTATION",
    "CREDENTIAL_LABEL",
    "MANAGED_BY_LABEL",
    "MANAGED_BY_VALUE",
    "AddedEntry",
    "CredentialIntent",
    "NamespacePlan",
    "NamespaceView",
    "Outcome",
    "OutcomeKind",
    "SecretCreate",
    "SecretDelete",
    "SecretState",
    "SecretUpdate",
    "ServiceAccountEdit",
    "ServiceAccountState",
    "credential_owner",
    "data_digest",
    "format_added_annotation",
    "is_credential_key",
    "parse_added_annotation",
    "plan_namespace",
    "replica_manifest",
]

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "regcred-operator"
CREDENTIAL_LABEL = f"{API_GROUP}/credential"
CONTENT_HASH_ANNOTATION = f"{API_GROUP}/content-hash"
ADDED_PULL_SECRETS_ANNOTATION = f"{API_GROUP}/added-pull-secrets"
# A credential's key as records and labels carry it: a name, or `namespace_name`, and at
# most 63 characters (a label value). Anything else in a record names no credential.
_CREDENTIAL_KEY = re.compile(r"^(?=.{1,63}$)([a-z0-9]([-a-z0-9]*[a-z0-9])?_)?[a-z0-9]([-.a-z0-9]*[a-z0-9])?$")


def is_credential_key(value: str) -> bool:
    """Whether `value` could be a credential's key (see `_CREDENTIAL_KEY`)."""
    return _CREDENTIAL_KEY.match(value) is not None


def data_digest(data: Mapping[str, str]) -> str:
    """Fingerprint of a Secret's base64 `data`, so caches can compare content without keeping it."""
    canonical = json.dumps(dict(sorted(data.items())), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, order=True)
class AddedEntry:
    """One record of the added-pull-secrets annotation: an entry, and who added it.

    `credential` is the adding credential's key; None for a record written before
    records named their credential (see the module docstring for who owns those).
    """

    secret_name: str
    credential: str | None = None

    def __str__(self) -> str:
        return self.secret_name if self.credential is None else f"{self.secret_name}={self.credential}"


def parse_added_annotation(value: str | None) -> tuple[AddedEntry, ...]:
    """The records of the annotation, `name=credential` or (older) `name`, comma-separated.

    Neither Kubernetes names nor credential keys hold `=` or `,`.
    """
    if not value:
        return ()
    entries = set()
    for item in value.split(","):
        name, _, credential = (part.strip() for part in item.partition("="))
        if name:
            entries.add(AddedEntry(name, credential or None))
    return tuple(sorted(entries, key=_record_order))


def format_added_annotation(entries: tuple[AddedEntry, ...]) -> str | None:
    """The annotation value for a set of records; None removes the annotation."""
    return ",".join(str(entry) for entry in sorted(set(entries), key=_record_order)) or None


def _record_order(entry: AddedEntry) -> tuple[str, str]:
    return entry.secret_name, entry.credential or ""


@dataclass(frozen=True)
class SecretState:
    """A Secret as the caches know it: identity, ownership and a digest of its data.

    `type` and `digest` are None when only its metadata was read: the caches keep Secrets'
    metadata, and the operator reads the data of the one a plan would write to first.
    """

    namespace: str
    name: str
    resource_version: str
    type: str | None
    managed: bool
    credential: str | None
    content_hash: str | None
    digest: str | None
    # Only owners that are RegistryCredentials: any other ownerReference is not ours to touch.
    credential_owner_uids: frozenset[str]


@dataclass(frozen=True)
class ServiceAccountState:
    """A ServiceAccount's pull-secret list and what the operator recorded adding to it."""

    namespace: str
    name: str
    resource_version: str
    image_pull_secrets: tuple[str, ...]
    added_by_operator: tuple[AddedEntry, ...]

    @property
    def recording_credentials(self) -> frozenset[str]:
        """The credentials named by this account's records.

        A record naming something that cannot be a credential's key (whoever can edit the
        account can write one) names none: it never leads the operator anywhere.
        """
        return frozenset(
            entry.credential
            for entry in self.added_by_operator
            if entry.credential and is_credential_key(entry.credential)
        )


@dataclass(frozen=True)
class CredentialIntent:
    """What one credential wants, reduced to what planning a namespace needs.

    `name` is the credential's key (its replicas' label value); `owner` the
    ownerReference its replicas carry, None when they can carry none: a namespaced
    owner may only own objects in its own namespace.
    """

    name: str
    uid: str
    secret_name: str
    service_account_globs: tuple[str, ...]
    docker_config: bytes | None = field(default=None, repr=False)  # None: sources invalid
    content_hash: str | None = None
    owner: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class NamespaceView:
    """One namespace as the caches see it, from the point of view of one credential."""

    namespace: str
    targeted: bool
    # Another credential that holds this namespace's copy of our secret name (older claim).
    claimed_by: str | None
    # Secrets of ours (any name) plus whatever is known under our secret name.
    secrets: Mapping[str, SecretState]
    service_accounts: tuple[ServiceAccountState, ...]


@dataclass(frozen=True)
class SecretCreate:
    namespace: str
    name: str
    manifest: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True)
class SecretUpdate:
    """Bring an existing replica's data and our metadata to `manifest`, if unchanged since read.

    Only what `manifest` sets is written; other writers' labels, annotations, finalizers
    and ownerReferences stay. `displaced_owners` are other RegistryCredentials' uids whose
    ownerReferences go (an object may have only one controller).
    """

    namespace: str
    name: str
    resource_version: str
    manifest: Mapping[str, Any] = field(repr=False)
    displaced_owners: frozenset[str] = frozenset()


@dataclass(frozen=True)
class SecretDelete:
    namespace: str
    name: str
    resource_version: str


@dataclass(frozen=True)
class ServiceAccountEdit:
    """Set the whole imagePullSecrets list (it is atomic) and our record, if unchanged since read."""

    namespace: str
    name: str
    resource_version: str
    image_pull_secrets: tuple[str, ...]
    added_by_operator: tuple[AddedEntry, ...]


Write = SecretCreate | SecretUpdate | SecretDelete | ServiceAccountEdit


class OutcomeKind(str, Enum):
    SYNCED = "Synced"  # replica current, ServiceAccounts patched (after the writes)
    STALE = "Stale"  # replica kept as last good copy: sources are invalid
    CONFLICT = "Conflict"  # the name is taken by something we do not own
    FAILED = "Failed"  # cannot be synced (set by the caller when writes fail)
    UNTARGETED = "Untargeted"  # not ours to serve; any leftovers are being removed


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class NamespacePlan:
    namespace: str
    writes: tuple[Write, ...]
    outcome: Outcome


def credential_owner(kind: str, name: str, uid: str) -> dict[str, str]:
    """The ownerReference (without its flags) a replica carries to a cluster-scoped owner."""
    return {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": kind, "name": name, "uid": uid}


def replica_manifest(intent: CredentialIntent, namespace: str) -> dict[str, Any]:
    """The replica Secret as it should exist. Never copies the credential's labels or annotations."""
    assert intent.docker_config is not None and intent.content_hash is not None
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": DOCKER_CONFIG_TYPE,
        "metadata": {
            "name": intent.secret_name,
            "namespace": namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, CREDENTIAL_LABEL: intent.name},
            "annotations": {CONTENT_HASH_ANNOTATION: intent.content_hash},
            "ownerReferences": [{**intent.owner, "controller": True, "blockOwnerDeletion": False}] if intent.owner else [],
        },
        "data": {DOCKER_CONFIG_KEY: base64.b64encode(intent.docker_config).decode("ascii")},
    }


def _is_ours(secret: SecretState, intent: CredentialIntent) -> bool:
    return secret.managed and secret.credential == intent.name


def _is_current(secret: SecretState, intent: CredentialIntent, manifest: Mapping[str, Any]) -> bool:
    return (
        secret.type == DOCKER_CONFIG_TYPE
        and _is_ours(secret, intent)
        and secret.content_hash == intent.content_hash
        and secret.digest == data_digest(manifest["data"])
        and (intent.owner is None or intent.uid in secret.credential_owner_uids)
    )


def _secret_writes(
    existing: SecretState | None, intent: CredentialIntent, namespace: str
) -> tuple[Write, ...]:
    manifest = replica_manifest(intent, namespace)
    if existing is None:
        return (SecretCreate(namespace, intent.secret_name, manifest),)
    if existing.type is None or existing.digest is None:
        raise ValueError(f"Secret {namespace}/{existing.name}: its data must be read before planning a write to it")
    if _is_current(existing, intent, manifest):
        return ()
    if existing.type != DOCKER_CONFIG_TYPE:
        # A Secret's type is immutable: replace the object.
        return (
            SecretDelete(namespace, existing.name, existing.resource_version),
            SecretCreate(namespace, intent.secret_name, manifest),
        )
    return (
        SecretUpdate(
            namespace,
            intent.secret_name,
            existing.resource_version,
            manifest,
            existing.credential_owner_uids - {intent.uid},
        ),
    )


class EntryMode(str, Enum):
    """What to do with the credential's own imagePullSecrets records in a namespace."""

    SERVE = "serve"  # add to matching ServiceAccounts, drop our records from the others
    WITHDRAW = "withdraw"  # drop our records everywhere
    LEAVE = "leave"  # not ours to serve now (another holds the name, or no content): add nothing, keep our record


def _recorded_by(entry: AddedEntry, view: NamespaceView, intent: CredentialIntent, mode: EntryMode) -> bool:
    """Whether this record is the credential's: it names it, or (an old name-only record)
    the namespace's copy of that name is ours, or is ours as this plan serves it."""
    if entry.credential is not None:
        return entry.credential == intent.name
    if mode is EntryMode.SERVE and entry.secret_name == intent.secret_name:
        return True
    copy = view.secrets.get(entry.secret_name)
    return copy is not None and _is_ours(copy, intent)


def _service_account_writes(
    view: NamespaceView, intent: CredentialIntent, mode: EntryMode
) -> tuple[ServiceAccountEdit, ...]:
    """Our records to add or drop, and the entries whose last record goes with them.

    Records under any other name than the current secretName (a former one) always go;
    old name-only records of ours are rewritten to name us.
    """
    edits = []
    for account in view.service_accounts:
        records = set(account.added_by_operator)
        ours = {entry for entry in records if _recorded_by(entry, view, intent, mode)}
        kept = records - ours
        entries = list(account.image_pull_secrets)
        own_record = AddedEntry(intent.secret_name, intent.name)
        if mode is EntryMode.SERVE and matches_any_glob(account.name, intent.service_account_globs):
            if intent.secret_name not in entries:
                entries.append(intent.secret_name)
                kept.add(own_record)
            elif intent.secret_name in {entry.secret_name for entry in records}:
                kept.add(own_record)  # the operator added it, maybe for another credential: ours too
            # else: a hand-made entry, nobody's to remove
        elif mode is EntryMode.LEAVE and any(entry.secret_name == intent.secret_name for entry in ours):
            kept.add(own_record)
        # An entry the operator added goes with its last record; a hand-made one never.
        gone = {entry.secret_name for entry in records} - {entry.secret_name for entry in kept}
        new_entries = tuple(name for name in entries if name not in gone)
        new_records = tuple(sorted(kept, key=_record_order))
        if new_entries != account.image_pull_secrets or new_records != tuple(sorted(records, key=_record_order)):
            edits.append(
                ServiceAccountEdit(
                    view.namespace, account.name, account.resource_version, new_entries, new_records
                )
            )
    return tuple(edits)


def plan_namespace(view: NamespaceView, intent: CredentialIntent) -> NamespacePlan:
    """The writes that bring one namespace to what the credential wants, in order."""
    ns = view.namespace
    ours = {name: s for name, s in view.secrets.items() if _is_ours(s, intent)}
    # Copies under a former secretName are ours to remove wherever they are. They go last,
    # after their ServiceAccount entries: an old name-only record is told ours by its copy.
    renamed = [s for name, s in ours.items() if name != intent.secret_name]
    stale_deletes = tuple(SecretDelete(ns, s.name, s.resource_version) for s in renamed)
    existing = view.secrets.get(intent.secret_name)

    if view.claimed_by is not None:
        # An older credential holds the name here; it will take the copy over. Our records
        # go once we do not want the namespace: the holder's own record keeps the entry.
        sa_writes = _service_account_writes(
            view, intent, EntryMode.LEAVE if view.targeted else EntryMode.WITHDRAW
        )
        outcome = (
            Outcome(
                OutcomeKind.CONFLICT,
                "ClaimedByOlderCredential",
                f"secret {intent.secret_name!r} is held here by RegistryCredential "
                f"{view.claimed_by!r}, which is older",
            )
            if view.targeted
            else Outcome(OutcomeKind.UNTARGETED)
        )
        return NamespacePlan(ns, sa_writes + stale_deletes, outcome)

    if not view.targeted:
        deletes = stale_deletes
        if existing is not None and _is_ours(existing, intent):
            deletes += (SecretDelete(ns, existing.name, existing.resource_version),)
        sa_writes = _service_account_writes(view, intent, EntryMode.WITHDRAW)
        return NamespacePlan(ns, sa_writes + deletes, Outcome(OutcomeKind.UNTARGETED))

    if existing is not None and not existing.managed:
        return NamespacePlan(
            ns,
            _service_account_writes(view, intent, EntryMode.LEAVE) + stale_deletes,
            Outcome(
                OutcomeKind.CONFLICT,
                "SecretExists",
                f"a Secret named {intent.secret_name!r} that regcred-operator does not manage "
                "already exists; it is left untouched",
            ),
        )

    if intent.docker_config is None:
        # Sources are invalid: keep the last good copy, write nothing to it.
        if existing is not None and _is_ours(existing, intent):
            sa_writes = _service_account_writes(view, intent, EntryMode.SERVE)
            return NamespacePlan(
                ns,
                sa_writes + stale_deletes,
                Outcome(OutcomeKind.STALE, "SourceInvalid", "kept the last good copy"),
            )
        return NamespacePlan(
            ns,
            _service_account_writes(view, intent, EntryMode.LEAVE) + stale_deletes,
            Outcome(OutcomeKind.FAILED, "SourceInvalid", "no valid source content to copy yet"),
        )

    secret_writes = _secret_writes(existing, intent, ns)
    sa_writes = _service_account_writes(view, intent, EntryMode.SERVE)
    return NamespacePlan(ns, secret_writes + sa_writes + stale_deletes, Outcome(OutcomeKind.SYNCED))
