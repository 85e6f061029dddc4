"""Properties of the pure planner, over generated namespaces.

A namespace is simulated as a dict of Secrets and ServiceAccounts; writes are
applied to it as the API server would (resourceVersions move on every write). For
any namespace the planner may be asked about:

- a plan applied once leaves nothing for the next plan to do;
- a plan never writes a Secret that lacks our managed-by label, and never removes
  an imagePullSecrets entry that the added-pull-secrets annotation does not record;
- a plan cut short after any of its writes (the operator died) and then planned
  again from what is there ends exactly where the whole plan would have.
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass, field, replace

from hypothesis import given, settings
from hypothesis import strategies as st

from regcred.models import KIND
from regcred.planning.plan import (
    CONTENT_HASH_ANNOTATION,
    AddedEntry,
    CredentialIntent,
    NamespaceView,
    SecretCreate,
    SecretDelete,
    SecretState,
    SecretUpdate,
    ServiceAccountEdit,
    ServiceAccountState,
    Write,
    credential_owner,
    data_digest,
    plan_namespace,
)
from regcred.planning.sources import DOCKER_CONFIG_TYPE

NAMESPACE = "tenant-a"
CREDENTIAL = "acme"
UID = "uid-acme"
SECRET_NAMES = ("acme-pull", "acme-old", "shared")
HAND_MADE = ("hand-made", "other-team")
ENTRY_NAMES = SECRET_NAMES + HAND_MADE
ACCOUNT_NAMES = ("default", "builder", "deployer")
MAX_PASSES = 3


@dataclass
class Namespace:
    """One namespace's Secrets and ServiceAccounts, changed by writes as the API server would."""

    secrets: dict[str, SecretState]
    accounts: dict[str, ServiceAccountState]
    versions: itertools.count = field(default_factory=lambda: itertools.count(1000))

    def view(self, intent: CredentialIntent, targeted: bool, claimed_by: str | None) -> NamespaceView:
        # What the controller's caches hand the planner: our replicas under any name,
        # and whatever holds the wanted name.
        secrets = {
            name: secret
            for name, secret in self.secrets.items()
            if secret.credential == intent.name or name == intent.secret_name
        }
        accounts = tuple(self.accounts[name] for name in sorted(self.accounts))
        return NamespaceView(NAMESPACE, targeted, claimed_by, secrets, accounts)

    def apply(self, write: Write) -> None:
        version = str(next(self.versions))
        match write:
            case SecretCreate(name=name, manifest=manifest) | SecretUpdate(name=name, manifest=manifest):
                if isinstance(write, SecretCreate):
                    assert name not in self.secrets, f"create over an existing Secret {name}"
                else:
                    assert self.secrets[name].resource_version == write.resource_version
                self.secrets[name] = secret_from_manifest(manifest, version)
            case SecretDelete(name=name):
                assert self.secrets[name].resource_version == write.resource_version
                del self.secrets[name]
            case ServiceAccountEdit(name=name):
                account = self.accounts[name]
                assert account.resource_version == write.resource_version
                self.accounts[name] = replace(
                    account,
                    resource_version=version,
                    image_pull_secrets=write.image_pull_secrets,
                    added_by_operator=tuple(sorted(write.added_by_operator, key=str)),
                )

    def contents(self) -> tuple:
        """Everything but resourceVersions: what two end states must agree on."""
        secrets = {name: replace(s, resource_version="") for name, s in self.secrets.items()}
        accounts = sorted(
            (a.name, a.image_pull_secrets, a.added_by_operator) for a in self.accounts.values()
        )
        return secrets, accounts


def secret_from_manifest(manifest, version: str) -> SecretState:
    meta = manifest["metadata"]
    return SecretState(
        namespace=meta["namespace"],
        name=meta["name"],
        resource_version=version,
        type=manifest["type"],
        managed=True,
        credential=meta["labels"]["regcred.dev/credential"],
        content_hash=meta["annotations"][CONTENT_HASH_ANNOTATION],
        digest=data_digest(manifest["data"]),
        credential_owner_uids=frozenset(ref["uid"] for ref in meta["ownerReferences"]),
    )


# -- generated inputs -------------------------------------------------------------
@st.composite
def secrets(draw) -> dict[str, SecretState]:
    found = {}
    for index, name in enumerate(draw(st.sets(st.sampled_from(SECRET_NAMES)))):
        owner = draw(st.sampled_from([CREDENTIAL, "other-credential", None]))
        found[name] = SecretState(
            namespace=NAMESPACE,
            name=name,
            resource_version=str(index + 1),
            type=draw(st.sampled_from([DOCKER_CONFIG_TYPE, "Opaque"])),
            managed=owner is not None,
            credential=owner,
            content_hash=draw(st.sampled_from(["sha256:old", "sha256:new", None])),
            digest=draw(st.sampled_from(["stale", "current"])),
            credential_owner_uids=frozenset(draw(st.sets(st.sampled_from([UID, "uid-other"])))),
        )
    return found


@st.composite
def service_accounts(draw) -> dict[str, ServiceAccountState]:
    accounts = {}
    for index, name in enumerate(draw(st.sets(st.sampled_from(ACCOUNT_NAMES)))):
        entries = draw(st.lists(st.sampled_from(ENTRY_NAMES), max_size=4, unique=True))
        # Records name us, another credential, or (the old format) nobody.
        recorded = draw(st.sets(st.builds(
            AddedEntry, st.sampled_from(SECRET_NAMES), st.sampled_from([CREDENTIAL, "other-credential", None])
        )))
        accounts[name] = ServiceAccountState(
            namespace=NAMESPACE,
            name=name,
            resource_version=str(100 + index),
            image_pull_secrets=tuple(entries),
            added_by_operator=tuple(sorted(recorded, key=str)),
        )
    return accounts


@st.composite
def intents(draw) -> CredentialIntent:
    valid = draw(st.booleans())
    config = draw(st.sampled_from([b'{"auths":{}}', b'{"auths":{"r":{}}}'])) if valid else None
    return CredentialIntent(
        name=CREDENTIAL,
        uid=UID,
        secret_name=draw(st.sampled_from(SECRET_NAMES)),
        service_account_globs=tuple(draw(st.sets(st.sampled_from(["default", "build*", "*", "d?fault"])))),
        docker_config=config,
        content_hash="sha256:" + base64.b16encode(config).decode()[:16] if config else None,
        owner=credential_owner(KIND, CREDENTIAL, UID),
    )


situations = st.tuples(
    secrets(), service_accounts(), intents(), st.booleans(), st.sampled_from([None, "older-credential"])
)


def converge(namespace: Namespace, intent: CredentialIntent, targeted: bool, claimed_by: str | None) -> int:
    """Plan and apply until a plan has no writes; return how many passes wrote something."""
    for passes in range(MAX_PASSES + 1):
        plan = plan_namespace(namespace.view(intent, targeted, claimed_by), intent)
        if not plan.writes:
            return passes
        for write in plan.writes:
            namespace.apply(write)
    raise AssertionError(f"no fixed point after {MAX_PASSES} passes; still planning {plan.writes}")


# -- properties -------------------------------------------------------------------
@settings(max_examples=400, deadline=None)
@given(situations)
def test_a_plan_applied_leaves_nothing_to_do(situation) -> None:
    found, accounts, intent, targeted, claimed_by = situation
    namespace = Namespace(dict(found), dict(accounts))
    for write in plan_namespace(namespace.view(intent, targeted, claimed_by), intent).writes:
        namespace.apply(write)
    second = plan_namespace(namespace.view(intent, targeted, claimed_by), intent)
    assert second.writes == (), "the second plan over the first one's result still writes"


@settings(max_examples=400, deadline=None)
@given(situations)
def test_a_plan_touches_only_what_the_operator_owns(situation) -> None:
    found, accounts, intent, targeted, claimed_by = situation
    plan = plan_namespace(Namespace(found, accounts).view(intent, targeted, claimed_by), intent)
    after = Namespace(dict(found), dict(accounts))
    for write in plan.writes:
        after.apply(write)

    def copy_is_ours(name: str) -> bool:
        # An old name-only record belongs to the credential whose copy of that name is
        # there (before the plan, or made ours by it).
        return any(
            (copy := secrets.get(name)) is not None and copy.managed and copy.credential == CREDENTIAL
            for secrets in (found, after.secrets)
        )

    created: set[str] = set()
    for write in plan.writes:
        match write:
            case SecretCreate():
                created.add(write.name)
            case SecretUpdate() | SecretDelete() if write.name not in created:
                assert found[write.name].managed, f"{write} writes a Secret without our label"
            case ServiceAccountEdit():
                before = accounts[write.name]
                removed = set(before.image_pull_secrets) - set(write.image_pull_secrets)
                recorded = {entry.secret_name for entry in before.added_by_operator}
                assert removed <= recorded, (
                    f"{write.name}: removed {removed - recorded}, which the operator never recorded adding"
                )
                others = {
                    entry for entry in before.added_by_operator
                    if entry.credential not in (None, CREDENTIAL)
                    or (entry.credential is None and not copy_is_ours(entry.secret_name))
                }
                assert others <= set(write.added_by_operator), "another credential's record was dropped"
                assert not removed & {entry.secret_name for entry in others}, "an entry another credential recorded went"
                kept = [e for e in before.image_pull_secrets if e in write.image_pull_secrets]
                assert list(write.image_pull_secrets[: len(kept)]) == kept, "kept entries reordered"
                assert len(set(write.image_pull_secrets)) == len(write.image_pull_secrets), "duplicates"


@settings(max_examples=400, deadline=None)
@given(situations, st.data())
def test_a_plan_cut_short_anywhere_ends_where_the_whole_plan_ends(situation, data) -> None:
    found, accounts, intent, targeted, claimed_by = situation
    whole = Namespace(dict(found), dict(accounts))
    converge(whole, intent, targeted, claimed_by)

    cut = Namespace(dict(found), dict(accounts))
    writes = plan_namespace(cut.view(intent, targeted, claimed_by), intent).writes
    done = data.draw(st.integers(0, len(writes)), label="writes done before the crash")
    for write in writes[:done]:
        cut.apply(write)
    converge(cut, intent, targeted, claimed_by)
    assert cut.contents() == whole.contents()
