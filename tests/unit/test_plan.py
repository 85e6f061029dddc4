"""Every branch of plan_namespace, and that applying a plan then planning again writes nothing."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping
from typing import Any, NamedTuple

import pytest

from regcred.planning.dockerconfig import content_hash, kubectl_auth_entry, render_docker_config
from regcred.models import KIND
from regcred.planning.plan import (
    CONTENT_HASH_ANNOTATION,
    CREDENTIAL_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    CredentialIntent,
    NamespacePlan,
    NamespaceView,
    OutcomeKind,
    SecretCreate,
    SecretDelete,
    SecretState,
    SecretUpdate,
    ServiceAccountEdit,
    ServiceAccountState,
    credential_owner,
    data_digest,
    format_added_annotation,
    parse_added_annotation,
    plan_namespace,
    replica_manifest,
)
from regcred.planning.sources import DOCKER_CONFIG_TYPE

NS = "team-a"
PULL = "acme-pull"


def docker_config(password: str) -> bytes:
    return render_docker_config({"r.example": kubectl_auth_entry("robot", password, None)})


def intent(
    secret_name: str = PULL,
    globs: tuple[str, ...] = ("default",),
    config: bytes | None = docker_config("current"),
    name: str = "acme",
) -> CredentialIntent:
    return CredentialIntent(
        name=name,
        uid=f"uid-{name}",
        secret_name=secret_name,
        service_account_globs=globs,
        docker_config=config,
        content_hash=content_hash(config) if config is not None else None,
        owner=credential_owner(KIND, name, f"uid-{name}"),
    )


CURRENT = intent()


def state_of(manifest: Mapping[str, Any], resource_version: str) -> SecretState:
    """What the caches would record for this object once the API server stored it."""
    metadata = manifest["metadata"]
    labels = metadata.get("labels", {})
    return SecretState(
        namespace=metadata["namespace"],
        name=metadata["name"],
        resource_version=resource_version,
        type=manifest["type"],
        managed=labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE,
        credential=labels.get(CREDENTIAL_LABEL),
        content_hash=metadata.get("annotations", {}).get(CONTENT_HASH_ANNOTATION),
        digest=data_digest(manifest["data"]),
        credential_owner_uids=frozenset(ref["uid"] for ref in metadata.get("ownerReferences", ())),
    )


def replica(of: CredentialIntent = CURRENT, rv: str = "7", **changes: Any) -> SecretState:
    """A copy as the operator made it for `of`, with `changes` made to it since."""
    return dataclasses.replace(state_of(replica_manifest(of, NS), rv), **changes)


def foreign(name: str = PULL, type: str = DOCKER_CONFIG_TYPE) -> SecretState:
    return SecretState(NS, name, "3", type, False, None, None, "digest", frozenset())


def account(
    name: str, *entries: str, added: tuple[str, ...] = (), rv: str = "5"
) -> ServiceAccountState:
    """`added` as the annotation writes it: `name=credential`, or an old `name` alone."""
    return ServiceAccountState(NS, name, rv, entries, parse_added_annotation(",".join(added)))


def view(
    *secrets: SecretState,
    accounts: tuple[ServiceAccountState, ...] = (),
    targeted: bool = True,
    claimed_by: str | None = None,
) -> NamespaceView:
    return NamespaceView(NS, targeted, claimed_by, {s.name: s for s in secrets}, accounts)


def summary(plan: NamespacePlan) -> list[tuple[Any, ...]]:
    """The writes as short tuples, so tables read as what happens, in order."""
    rows: list[tuple[Any, ...]] = []
    for write in plan.writes:
        match write:
            case SecretCreate():
                rows.append(("create", write.name))
            case SecretUpdate():
                rows.append(
                    ("update", write.name, write.resource_version, tuple(sorted(write.displaced_owners)))
                )
            case SecretDelete():
                rows.append(("delete", write.name, write.resource_version))
            case ServiceAccountEdit():
                rows.append(
                    (
                        "sa",
                        write.name,
                        write.resource_version,
                        write.image_pull_secrets,
                        tuple(str(entry) for entry in write.added_by_operator),
                    )
                )
    return rows


def apply_plan(before: NamespaceView, plan: NamespacePlan) -> NamespaceView:
    """Apply the writes as the API server would, checking each resourceVersion precondition."""
    versions = (str(n) for n in itertools.count(1000))
    secrets = dict(before.secrets)
    accounts = {sa.name: sa for sa in before.service_accounts}
    for write in plan.writes:
        match write:
            case SecretCreate():
                assert write.name not in secrets, f"create of existing {write.name}"
                secrets[write.name] = state_of(write.manifest, next(versions))
            case SecretUpdate():
                assert secrets[write.name].resource_version == write.resource_version
                secrets[write.name] = state_of(write.manifest, next(versions))
            case SecretDelete():
                assert secrets.pop(write.name).resource_version == write.resource_version
            case ServiceAccountEdit():
                assert accounts[write.name].resource_version == write.resource_version
                accounts[write.name] = ServiceAccountState(
                    NS,
                    write.name,
                    next(versions),
                    write.image_pull_secrets,
                    write.added_by_operator,
                )
    return dataclasses.replace(before, secrets=secrets, service_accounts=tuple(accounts.values()))


class Case(NamedTuple):
    view: NamespaceView
    intent: CredentialIntent
    writes: list[tuple[Any, ...]]
    outcome: OutcomeKind
    reason: str = ""


OURS = (f"{PULL}=acme",)
OLD_FORMAT = (PULL,)  # a record from before records named their credential
CASES = {
    "fresh namespace: create, then add to default": Case(
        view(accounts=(account("default"), account("builder"))),
        CURRENT,
        [("create", PULL), ("sa", "default", "5", (PULL,), OURS)],
        OutcomeKind.SYNCED,
    ),
    "converged: zero writes": Case(
        view(replica(), accounts=(account("default", PULL, added=OURS),)),
        CURRENT,
        [],
        OutcomeKind.SYNCED,
    ),
    "content changed: update at the read resourceVersion": Case(
        view(
            replica(intent(config=docker_config("old")), rv="41"),
            accounts=(account("default", PULL, added=OURS),),
        ),
        CURRENT,
        [("update", PULL, "41", ())],
        OutcomeKind.SYNCED,
    ),
    "replica edited by hand (digest differs): update": Case(
        view(replica(digest="edited"), accounts=(account("default", PULL, added=OURS),)),
        CURRENT,
        [("update", PULL, "7", ())],
        OutcomeKind.SYNCED,
    ),
    "replica owned by a former credential of the same name: update, dropping its ownerReference": Case(
        view(
            replica(credential_owner_uids=frozenset({"uid-gone"})),
            accounts=(account("default", PULL, added=OURS),),
        ),
        CURRENT,
        [("update", PULL, "7", ("uid-gone",))],
        OutcomeKind.SYNCED,
    ),
    "replica of the wrong type: delete, then create": Case(
        view(replica(type="Opaque"), accounts=(account("default", PULL, added=OURS),)),
        CURRENT,
        [("delete", PULL, "7"), ("create", PULL)],
        OutcomeKind.SYNCED,
    ),
    "copy left by another credential, no older claim: taken over": Case(
        view(replica(intent(name="other")), accounts=(account("default", PULL, added=OURS),)),
        CURRENT,
        [("update", PULL, "7", ("uid-other",))],
        OutcomeKind.SYNCED,
    ),
    "foreign Secret with the name: conflict, no writes": Case(
        view(foreign(), accounts=(account("default"),)),
        CURRENT,
        [],
        OutcomeKind.CONFLICT,
        "SecretExists",
    ),
    "foreign Secret of another type with the name: conflict, no writes": Case(
        view(foreign(type="Opaque"), accounts=(account("default"),)),
        CURRENT,
        [],
        OutcomeKind.CONFLICT,
        "SecretExists",
    ),
    "older credential holds the name: conflict, its entries left alone": Case(
        view(
            replica(intent(name="older")),
            accounts=(account("default", PULL, added=OURS), account("builder")),
            claimed_by="older",
        ),
        CURRENT,
        [],
        OutcomeKind.CONFLICT,
        "ClaimedByOlderCredential",
    ),
    "older credential holds the name, untargeted: our record goes, the holder's keeps the entry": Case(
        view(
            replica(intent(name="older")),
            accounts=(account("default", PULL, added=(*OURS, f"{PULL}=older")),),
            targeted=False,
            claimed_by="older",
        ),
        CURRENT,
        [("sa", "default", "5", (PULL,), (f"{PULL}=older",))],
        OutcomeKind.UNTARGETED,
    ),
    "untargeted: delete our copy, remove only recorded entries": Case(
        view(
            replica(),
            accounts=(account("default", "a", PULL, "b", added=OURS), account("builder", "a")),
            targeted=False,
        ),
        CURRENT,
        [("sa", "default", "5", ("a", "b"), ()), ("delete", PULL, "7")],
        OutcomeKind.UNTARGETED,
    ),
    "untargeted: a hand-added entry stays": Case(
        view(replica(), accounts=(account("default", PULL),), targeted=False),
        CURRENT,
        [("delete", PULL, "7")],
        OutcomeKind.UNTARGETED,
    ),
    "untargeted: other credentials' records stay": Case(
        view(
            replica(),
            accounts=(account("default", PULL, "other-pull", added=(*OURS, "other-pull=other")),),
            targeted=False,
        ),
        CURRENT,
        [("sa", "default", "5", ("other-pull",), ("other-pull=other",)), ("delete", PULL, "7")],
        OutcomeKind.UNTARGETED,
    ),
    "untargeted: an entry of our name another credential recorded stays, ours goes": Case(
        view(replica(), accounts=(account("default", PULL, added=(*OURS, f"{PULL}=other")),), targeted=False),
        CURRENT,
        [("sa", "default", "5", (PULL,), (f"{PULL}=other",)), ("delete", PULL, "7")],
        OutcomeKind.UNTARGETED,
    ),
    "untargeted, no copy here: another credential's entry of our name is not ours": Case(
        view(accounts=(account("default", PULL, added=(f"{PULL}=platform",)),), targeted=False),
        intent(name="tenant_acme"),
        [],
        OutcomeKind.UNTARGETED,
    ),
    "untargeted: our records under any name go, even with their copy gone": Case(
        view(accounts=(account("default", "a", "old-pull", added=("old-pull=acme",)),), targeted=False),
        CURRENT,
        [("sa", "default", "5", ("a",), ())],
        OutcomeKind.UNTARGETED,
    ),
    "old-format record with our copy here: ours, rewritten to name us": Case(
        view(replica(), accounts=(account("default", PULL, added=OLD_FORMAT),)),
        CURRENT,
        [("sa", "default", "5", (PULL,), OURS)],
        OutcomeKind.SYNCED,
    ),
    "old-format record with our copy here, untargeted: removed": Case(
        view(replica(), accounts=(account("default", "a", PULL, added=OLD_FORMAT),), targeted=False),
        CURRENT,
        [("sa", "default", "5", ("a",), ()), ("delete", PULL, "7")],
        OutcomeKind.UNTARGETED,
    ),
    "old-format record with another credential's copy here: not ours, stays": Case(
        view(
            replica(intent(name="older")),
            accounts=(account("default", PULL, added=OLD_FORMAT),),
            targeted=False,
            claimed_by="older",
        ),
        CURRENT,
        [],
        OutcomeKind.UNTARGETED,
    ),
    "old-format record and no copy here: nobody's, stays": Case(
        view(accounts=(account("default", PULL, added=OLD_FORMAT),), targeted=False),
        CURRENT,
        [],
        OutcomeKind.UNTARGETED,
    ),
    "serving an entry another credential added: recorded as ours too": Case(
        view(replica(), accounts=(account("default", PULL, added=(f"{PULL}=other",)),)),
        CURRENT,
        [("sa", "default", "5", (PULL,), (*OURS, f"{PULL}=other"))],
        OutcomeKind.SYNCED,
    ),
    "untargeted: a foreign Secret with the name is not ours to delete": Case(
        view(foreign(), accounts=(account("default", PULL),), targeted=False),
        CURRENT,
        [],
        OutcomeKind.UNTARGETED,
    ),
    "untargeted and empty: nothing to do": Case(
        view(accounts=(account("default"),), targeted=False), CURRENT, [], OutcomeKind.UNTARGETED
    ),
    "other entries and their order kept, ours appended": Case(
        view(replica(), accounts=(account("default", "z", "a"),)),
        CURRENT,
        [("sa", "default", "5", ("z", "a", PULL), OURS)],
        OutcomeKind.SYNCED,
    ),
    "hand-added entry while serving: left as it is, not recorded": Case(
        view(replica(), accounts=(account("default", "a", PULL),)),
        CURRENT,
        [],
        OutcomeKind.SYNCED,
    ),
    "glob * patches every ServiceAccount": Case(
        view(
            replica(intent(globs=("*",))),
            accounts=(account("default"), account("builder", PULL, added=OURS)),
        ),
        intent(globs=("*",)),
        [("sa", "default", "5", (PULL,), OURS)],
        OutcomeKind.SYNCED,
    ),
    "narrowed ServiceAccount globs: recorded entry removed, new match added": Case(
        view(
            replica(intent(globs=("builder",))),
            accounts=(account("default", "x", PULL, added=OURS), account("builder")),
        ),
        intent(globs=("builder",)),
        [("sa", "default", "5", ("x",), ()), ("sa", "builder", "5", (PULL,), OURS)],
        OutcomeKind.SYNCED,
    ),
    "empty ServiceAccount globs: patch none, withdraw recorded": Case(
        view(replica(intent(globs=())), accounts=(account("default", PULL, added=OURS),)),
        intent(globs=()),
        [("sa", "default", "5", (), ())],
        OutcomeKind.SYNCED,
    ),
    "renamed secretName: delete the old copy, create the new, move the entry": Case(
        view(replica(), accounts=(account("default", "a", PULL, added=OURS),)),
        intent(secret_name="acme-new"),
        [
            ("create", "acme-new"),
            ("sa", "default", "5", ("a", "acme-new"), ("acme-new=acme",)),
            ("delete", PULL, "7"),
        ],
        OutcomeKind.SYNCED,
    ),
    "renamed onto a foreign Secret: the old copy and its entry still go": Case(
        view(replica(), foreign("acme-new"), accounts=(account("default", "a", PULL, added=OURS),)),
        intent(secret_name="acme-new"),
        [("sa", "default", "5", ("a",), ()), ("delete", PULL, "7")],
        OutcomeKind.CONFLICT,
        "SecretExists",
    ),
    "renamed while sources are invalid: the old copy and its entry still go": Case(
        view(replica(), accounts=(account("default", PULL, added=OURS),)),
        intent(secret_name="acme-new", config=None),
        [("sa", "default", "5", (), ()), ("delete", PULL, "7")],
        OutcomeKind.FAILED,
        "SourceInvalid",
    ),
    "sources invalid, copy present: stale, the copy is not written": Case(
        view(replica(intent(config=docker_config("old"))), accounts=(account("default"),)),
        intent(config=None),
        [("sa", "default", "5", (PULL,), OURS)],
        OutcomeKind.STALE,
        "SourceInvalid",
    ),
    "sources invalid, no copy yet: failed, no writes": Case(
        view(accounts=(account("default"),)),
        intent(config=None),
        [],
        OutcomeKind.FAILED,
        "SourceInvalid",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_plan_namespace(case: Case) -> None:
    plan = plan_namespace(case.view, case.intent)
    assert summary(plan) == case.writes
    assert (plan.outcome.kind, plan.outcome.reason) == (case.outcome, case.reason)
    assert plan.namespace == NS


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_second_plan_after_applying_writes_nothing(case: Case) -> None:
    first = plan_namespace(case.view, case.intent)
    second = plan_namespace(apply_plan(case.view, first), case.intent)
    assert summary(second) == []
    assert second.outcome == first.outcome


def test_replica_carries_ownership_and_never_the_credentials_metadata() -> None:
    manifest = replica_manifest(CURRENT, NS)
    assert manifest["type"] == DOCKER_CONFIG_TYPE
    assert manifest["metadata"]["labels"] == {
        MANAGED_BY_LABEL: MANAGED_BY_VALUE,
        CREDENTIAL_LABEL: "acme",
    }
    assert manifest["metadata"]["annotations"] == {CONTENT_HASH_ANNOTATION: CURRENT.content_hash}
    (owner,) = manifest["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "RegistryCredential",
        "acme",
        "uid-acme",
        True,
    )


def settled(view: NamespaceView) -> tuple[Any, ...]:
    """A view without resourceVersions: what the namespace holds."""
    secrets = {
        name: dataclasses.replace(state, resource_version="")
        for name, state in view.secrets.items()
    }
    accounts = {
        sa.name: (sa.image_pull_secrets, sa.added_by_operator) for sa in view.service_accounts
    }
    return secrets, accounts


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_plan_interrupted_part_way_is_finished_by_the_next_pass(case: Case) -> None:
    """A write can fail (409, restart) after earlier ones landed; the next pass must still
    reach the same end state, or the operator leaks what it meant to clean up."""
    plan = plan_namespace(case.view, case.intent)
    goal = settled(apply_plan(case.view, plan))
    for landed in range(len(plan.writes)):
        partial = apply_plan(case.view, dataclasses.replace(plan, writes=plan.writes[:landed]))
        resumed = apply_plan(partial, plan_namespace(partial, case.intent))
        assert settled(resumed) == goal, f"after {landed} of {len(plan.writes)} writes"


@pytest.mark.parametrize(
    ("value", "records"),
    [
        (None, ()),
        ("", ()),
        ("acme-pull", (("acme-pull", None),)),
        ("b=team_x, a=acme ,a", (("a", None), ("a", "acme"), ("b", "team_x"))),
        ("acme-pull=acme,acme-pull=team_acme-pull", (("acme-pull", "acme"), ("acme-pull", "team_acme-pull"))),
        (",,", ()),
    ],
)
def test_added_annotation_reads_both_formats_and_writes_back_the_same(value, records) -> None:
    parsed = parse_added_annotation(value)
    assert [(entry.secret_name, entry.credential) for entry in parsed] == list(records)
    assert parse_added_annotation(format_added_annotation(parsed)) == parsed


def test_records_naming_no_possible_credential_name_none() -> None:
    recorded = "a=acme,b=team-a_pull,c=../../api/v1/secrets,d=UPPER,e=" + "x" * 64
    account = ServiceAccountState(NS, "default", "1", (), parse_added_annotation(recorded))
    assert account.recording_credentials == {"acme", "team-a_pull"}


@pytest.mark.parametrize(
    "unread",
    [
        pytest.param({"digest": None, "type": None}, id="known from metadata only"),
        pytest.param({"digest": None}, id="digest unknown"),
    ],
)
def test_a_write_is_never_planned_to_a_secret_whose_data_was_not_read(unread: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be read before planning"):
        plan_namespace(view(replica(**unread)), CURRENT)


def test_a_replica_whose_data_was_not_read_may_still_be_removed() -> None:
    plan = plan_namespace(view(replica(digest=None, type=None), targeted=False), CURRENT)
    assert summary(plan) == [("delete", PULL, "7")]
