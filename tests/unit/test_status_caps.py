"""Status and Event text stays bounded whatever the input, and every cut says "and N more"."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest

from regcred.errors import SourceInvalidConfigError
from regcred.kube.writes import post_event
from regcred.models import RegistryCheck, RegistryCredentialStatus, RegistryOverride
from regcred.planning.caps import (
    MAX_CONDITION_MESSAGE_CHARS,
    MAX_EVENT_MESSAGE_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_NAME_CHARS,
    capped_join,
    capped_text,
    unlisted,
)
from regcred.planning.conditions import (
    MAX_LISTED_CHECKS,
    MAX_LISTED_IGNORED_SOURCES,
    MAX_LISTED_NAMESPACES,
    MAX_LISTED_OVERRIDES,
    MAX_LISTED_PODS,
    READY,
    SOURCE_VALID,
    build_status,
)
from regcred.planning.plan import Outcome, OutcomeKind
from regcred.planning.verification import CREDENTIALS_VALID

NOW = "2024-05-02T00:00:00Z"
# etcd refuses a value past 1.5 MiB; the spec and metadata need their share of it.
STATUS_BUDGET_BYTES = 512 * 1024


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        pytest.param("short", 10, "short", id="shorter: as it is"),
        pytest.param("x" * 10, 10, "x" * 10, id="at the limit: as it is"),
        pytest.param("x" * 41, 40, "x" * 13 + " ... and 28 more characters", id="one past: cut, counted"),
        pytest.param("x" * 5000, 1024, "x" * 995 + " ... and 4005 more characters", id="a long message"),
    ],
)
def test_capped_text(text: str, limit: int, expected: str) -> None:
    capped = capped_text(text, limit)
    assert capped == expected
    assert len(capped) <= limit


FOUR = ["a" * 10, "b" * 10, "c" * 10, "d" * 10]


@pytest.mark.parametrize(
    ("items", "limit", "expected"),
    [
        pytest.param(["a", "b"], 10, "a; b", id="all fit"),
        pytest.param(FOUR, 40, "a" * 10 + "; " + "b" * 10 + " ... and 2 more", id="whole items, then a count"),
        pytest.param(FOUR, 30, "a" * 10 + " ... and 3 more", id="fewer whole items as the limit shrinks"),
        pytest.param(
            ["x" * 100, "b"], 50,
            "x" * 7 + " ... and 93 more characters ... and 1 more",
            id="the first item cut when it alone does not fit",
        ),
        pytest.param([], 10, "", id="nothing"),
    ],
)
def test_capped_join(items: list[str], limit: int, expected: str) -> None:
    joined = capped_join(items, limit)
    assert joined == expected
    assert len(joined) <= limit


def test_capped_join_of_many_long_items_stays_within_its_limit() -> None:
    items = [f"registry-{n}.example: " + "e" * 3000 for n in range(10_000)]
    joined = capped_join(items, MAX_CONDITION_MESSAGE_CHARS)
    assert len(joined) <= MAX_CONDITION_MESSAGE_CHARS
    assert joined.endswith(" more")
    shown = joined.count("registry-")
    assert joined.endswith(f"and {10_000 - shown} more")


@pytest.mark.parametrize(
    ("total", "listed", "expected"),
    [
        pytest.param(0, 50, "", id="empty"),
        pytest.param(50, 50, "", id="at the cap"),
        pytest.param(51, 50, "; stuckPods lists the first 50, and 1 more", id="one past"),
    ],
)
def test_unlisted(total: int, listed: int, expected: str) -> None:
    assert unlisted("stuckPods", total, listed) == expected


# -- build_status: each list at its cap and one past it --------------------------------------

def status(
    outcomes: dict[str, Outcome] | None = None,
    problems: tuple[Any, ...] = (),
    overrides: list[RegistryOverride] | None = None,
    checks: list[RegistryCheck] | None = None,
    stuck_pods: list[str] | None = None,
) -> RegistryCredentialStatus:
    return build_status(
        previous=None, generation=1, secret_name="acme-pull", content_hash="sha256:new",
        problems=problems, overrides=overrides or [], outcomes=outcomes or {"a": Outcome(OutcomeKind.SYNCED)},
        now=NOW, registry_checks=checks, stuck_pods=stuck_pods or [],
    )


def message(built: RegistryCredentialStatus, kind: str) -> str:
    (found,) = [c.message for c in built.conditions if c.type == kind]
    return found


def failed(count: int, text: str = "denied") -> RegistryCredentialStatus:
    return status({f"ns-{n:05d}": Outcome(OutcomeKind.FAILED, "WriteFailed", text) for n in range(count)})


def conflicted(count: int) -> RegistryCredentialStatus:
    return status({f"ns-{n:05d}": Outcome(OutcomeKind.CONFLICT, "SecretExists", "taken") for n in range(count)})


def stuck(count: int) -> RegistryCredentialStatus:
    return status(stuck_pods=[f"team/web-{n:05d}" for n in range(count)])


def check(n: int, result: str = "Rejected", text: str = "401 Unauthorized") -> RegistryCheck:
    return RegistryCheck(server=f"r{n:05d}.example", result=result, message=text, checked_at=NOW)


def checked(count: int) -> RegistryCredentialStatus:
    return status(checks=[check(n) for n in range(count)])


def overridden(count: int, ignored: int = 1) -> RegistryCredentialStatus:
    sources = [f"dockerConfigSecretRefs[{n}] (team/config-{n})" for n in range(ignored)]
    return status(overrides=[
        RegistryOverride(server=f"r{n:05d}.example", used="registries[0]", ignored=sources) for n in range(count)
    ])


class ListCap(NamedTuple):
    build: Callable[[int], RegistryCredentialStatus]
    cap: int
    listed: Callable[[RegistryCredentialStatus], int]
    condition: str
    note: str  # what the condition adds one past the cap


LIST_CAPS = {
    "failedNamespaces": ListCap(
        failed, MAX_LISTED_NAMESPACES, lambda s: len(s.failed_namespaces), READY,
        f"; failedNamespaces lists the first {MAX_LISTED_NAMESPACES}, and 1 more",
    ),
    "conflictedNamespaces": ListCap(
        conflicted, MAX_LISTED_NAMESPACES, lambda s: len(s.conflicted_namespaces), READY,
        f"; conflictedNamespaces lists the first {MAX_LISTED_NAMESPACES}, and 1 more",
    ),
    "stuckPods": ListCap(
        stuck, MAX_LISTED_PODS, lambda s: len(s.stuck_pods), READY,
        f"; stuckPods lists the first {MAX_LISTED_PODS}, and 1 more",
    ),
    "registryChecks": ListCap(
        checked, MAX_LISTED_CHECKS, lambda s: len(s.registry_checks), CREDENTIALS_VALID,
        f"; registryChecks lists the first {MAX_LISTED_CHECKS}, and 1 more",
    ),
    "overriddenRegistries": ListCap(
        overridden, MAX_LISTED_OVERRIDES, lambda s: len(s.overridden_registries), SOURCE_VALID,
        f"; overriddenRegistries lists the first {MAX_LISTED_OVERRIDES}, and 1 more",
    ),
    "overriddenRegistries[].ignored": ListCap(
        lambda count: overridden(1, ignored=count), MAX_LISTED_IGNORED_SOURCES,
        lambda s: len(s.overridden_registries[0].ignored), SOURCE_VALID,
        f"; each of overriddenRegistries lists the first {MAX_LISTED_IGNORED_SOURCES} ignored sources, and 1 more",
    ),
}


@pytest.mark.parametrize("case", LIST_CAPS.values(), ids=LIST_CAPS.keys())
def test_each_list_is_capped_and_its_condition_says_how_many_more(case: ListCap) -> None:
    at_cap, past_cap = case.build(case.cap), case.build(case.cap + 1)
    assert case.listed(at_cap) == case.cap
    assert not message(at_cap, case.condition).endswith(" more")
    assert case.listed(past_cap) == case.cap
    assert message(past_cap, case.condition).endswith(case.note)


def test_the_counts_are_not_capped() -> None:
    built = failed(MAX_LISTED_NAMESPACES + 7)
    assert built.matched_namespaces == MAX_LISTED_NAMESPACES + 7
    assert message(built, READY).startswith(f"{MAX_LISTED_NAMESPACES + 7} of {MAX_LISTED_NAMESPACES + 7} namespaces")


LONG = "admission denied: " + "policy text " * 2000


class MessageCap(NamedTuple):
    built: RegistryCredentialStatus
    texts: Callable[[RegistryCredentialStatus], list[str]]
    limit: int


MESSAGE_CAPS = {
    "a namespace's failure": MessageCap(
        failed(3, LONG), lambda s: [i.message for i in s.failed_namespaces], MAX_MESSAGE_CHARS
    ),
    "SourceValid: every problem": MessageCap(
        status(problems=tuple(SourceInvalidConfigError(f"dockerConfigSecretRefs[{n}]: {LONG}") for n in range(16))),
        lambda s: [message(s, SOURCE_VALID)], MAX_CONDITION_MESSAGE_CHARS,
    ),
    "a registry check's message": MessageCap(
        status(checks=[RegistryCheck(server="r.example", result="Error", message=LONG, checked_at=NOW)]),
        lambda s: [s.registry_checks[0].message], MAX_MESSAGE_CHARS,
    ),
    "a registry check's server": MessageCap(
        status(checks=[RegistryCheck(server="r." * 3000, result="Error", message="", checked_at=NOW)]),
        lambda s: [s.registry_checks[0].server], MAX_NAME_CHARS,
    ),
    "CredentialsValid: every bad registry": MessageCap(
        status(checks=[check(n, text=LONG) for n in range(200)]),
        lambda s: [message(s, CREDENTIALS_VALID)], MAX_CONDITION_MESSAGE_CHARS,
    ),
    "an override's names": MessageCap(
        status(overrides=[RegistryOverride(server="r." * 3000, used=LONG, ignored=[LONG])]),
        lambda s: [s.overridden_registries[0].server, s.overridden_registries[0].used,
                   *s.overridden_registries[0].ignored],
        MAX_NAME_CHARS,
    ),
}


@pytest.mark.parametrize("case", MESSAGE_CAPS.values(), ids=MESSAGE_CAPS.keys())
def test_each_message_is_capped_and_says_how_much_more(case: MessageCap) -> None:
    for text in case.texts(case.built):
        assert len(text) <= case.limit
        assert text.endswith(" more") or text.endswith(" more characters")


def test_a_status_from_the_worst_input_stays_within_the_budget() -> None:
    many = 2000
    long_name = "x" * 5000
    built = build_status(
        previous=None, generation=1, secret_name="acme-pull", content_hash="sha256:new",
        problems=[SourceInvalidConfigError(LONG) for _ in range(48)],
        overrides=[
            RegistryOverride(server=f"{n}{long_name}", used=LONG, ignored=[LONG] * 47) for n in range(many)
        ],
        outcomes={
            f"ns-{n:05d}": Outcome(OutcomeKind.FAILED if n % 2 else OutcomeKind.CONFLICT, "WriteFailed", LONG)
            for n in range(many)
        },
        now=NOW,
        registry_checks=[
            RegistryCheck(server=f"{n}{long_name}", result="Rejected", message=LONG, checked_at=NOW)
            for n in range(many)
        ],
        stuck_pods=[f"{'n' * 63}/{n}{'p' * 250}" for n in range(many)],
    )
    size = len(json.dumps(built.model_dump(by_alias=True, exclude_none=True)).encode())
    print(f"worst-case status: {size} bytes")
    assert size <= STATUS_BUDGET_BYTES, f"{size} bytes"
    assert all(len(c.message) <= MAX_CONDITION_MESSAGE_CHARS for c in built.conditions)


class RecordingClient:
    """Takes the one request post_event makes."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def request(self, method: str, path: str, *, body: dict[str, Any]) -> dict[str, Any]:
        self.bodies.append(body)
        return body


@pytest.mark.parametrize(
    ("text", "expected_length"),
    [
        pytest.param("Synced", 6, id="short: as it is"),
        pytest.param(LONG, MAX_EVENT_MESSAGE_CHARS, id="long: cut, counted"),
    ],
)
def test_event_messages_are_capped(text: str, expected_length: int) -> None:
    client: Any = RecordingClient()
    regarding = {"apiVersion": "regcred.dev/v1alpha1", "kind": "RegistryCredential", "name": "acme"}
    post_event(client, regarding, "Warning", "NamespacesFailed", text)
    (sent,) = client.bodies
    assert len(sent["message"]) == expected_length
    kept, cut, tail = sent["message"].partition(" ... and ")
    if cut:  # what was kept and what is counted make the whole message
        assert text.startswith(kept) and tail.endswith(" more characters")
        assert len(kept) + int(tail.split()[0]) == len(text)
