"""The verification scheduler without an API server: who waits for whom, and what is kept.

Registries are real sockets on 127.0.0.1 (tests/fakeregistry.py); credentials are
records as the caches would hold them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
from fakeregistry import RecordingRegistry, Tarpit

from regcred.config import OperatorConfig
from regcred.controller.verification import MAX_CHECKS_PER_NAMESPACE, VerificationScheduler
from regcred.controller.work import Verify
from regcred.kube.projections import CredentialRecord
from regcred.models import TenantRegistryCredentialSpec
from regcred.planning.sources import ResolvedContent
from regcred.planning.verification import MAX_CHECKED_LOGINS
from regcred.workqueue import WorkQueue


class Checked:
    """on_checked: remembers which credentials finished, and lets a test wait for one."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self._changed = threading.Condition()

    def __call__(self, key: str) -> None:
        with self._changed:
            self.keys.append(key)
            self._changed.notify_all()

    def wait(self, key: str, timeout: float = 30) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: key in self.keys, timeout)


def credential(name: str, namespace: str | None, server: str) -> tuple[CredentialRecord, ResolvedContent]:
    plain = server.startswith("http://")
    spec = TenantRegistryCredentialSpec.model_validate({
        "registries": [{"server": server, "username": "robot", "plainHTTP": plain, "passwordSecretRef": {"name": "pw"}}],
        "verify": {"enabled": True},
    })
    record = CredentialRecord(name, f"uid-{name}", 1, "t", False, spec, None, None, namespace)
    config = json.dumps({"auths": {server: {"username": "robot", "password": "pw"}}}).encode()
    return record, ResolvedContent(docker_config=config, content_hash=f"sha256:{name}")


@pytest.fixture
def checked() -> Checked:
    return Checked()


@pytest.fixture
def recorder() -> Iterator[RecordingRegistry]:
    server = RecordingRegistry()
    yield server
    server.close()


@pytest.fixture
def tarpits() -> Iterator[list[Tarpit]]:
    made = [Tarpit() for _ in range(MAX_CHECKS_PER_NAMESPACE + 1)]
    yield made
    for tarpit in made:
        tarpit.close()


def scheduler(checked: Checked, **settings: object) -> VerificationScheduler:
    return VerificationScheduler(WorkQueue(), OperatorConfig(**settings), checked)


def test_with_tenant_checks_off_nothing_is_sent_and_status_says_refused(checked, recorder) -> None:
    verifier = scheduler(checked)
    record, content = credential("probe", "team-a", f"http://{recorder.address}")

    verifier.verify(record, content)

    assert checked.keys == [record.key]  # decided at once, on the worker
    [check] = verifier.checks_for(record, content)
    assert (check.result, recorder.connections) == ("RefusedByPolicy", 0)


def test_a_tenant_is_told_yes_and_the_platform_the_details(checked, recorder) -> None:
    verifier = scheduler(checked, tenant_verify=True, tenant_verify_allow=("127.0.0.1/32",))
    tenants, platforms = credential("t", "team-a", f"http://{recorder.address}"), credential("p", None, f"http://{recorder.address}")
    for record, content in (tenants, platforms):
        verifier.verify(record, content)
        assert checked.wait(record.key)

    assert [check.message for check in verifier.checks_for(*tenants)] == ["the registry accepted the credentials"]
    assert [check.message for check in verifier.checks_for(*platforms)] == ["the registry accepted the credentials (Basic)"]


def test_tarpits_hold_only_their_own_namespace(checked, recorder, tarpits) -> None:
    verifier = scheduler(checked, tenant_verify=True, tenant_verify_allow=("127.0.0.1/32",))
    held = [credential(f"tarpit-{n}", "team-a", tarpit.address) for n, tarpit in enumerate(tarpits)]
    for record, content in held:
        verifier.verify(record, content)
    for tarpit in tarpits[:MAX_CHECKS_PER_NAMESPACE]:
        assert tarpit.accepted.wait(30)

    other = credential("honest", "team-b", f"http://{recorder.address}")
    verifier.verify(*other)

    assert checked.wait(other[0].key)
    assert not tarpits[-1].accepted.is_set(), "a fifth check ran in a namespace already at its limit"
    assert not any(tarpit.hung_up.is_set() for tarpit in tarpits)

    # A check ending frees its namespace's place: the one that waited is queued again.
    tarpits[0].close()
    assert checked.wait(held[0][0].key)
    waiting = held[-1][0].key
    assert verifier.queue.get(block=False) == Verify(waiting)
    verifier.verify(*held[-1])
    assert tarpits[-1].accepted.wait(30)


def test_a_check_forgotten_while_it_runs_leaves_nothing_behind(checked, tarpits) -> None:
    verifier = scheduler(checked)
    record, content = credential("gone", None, tarpits[0].address)
    verifier.verify(record, content)
    assert tarpits[0].accepted.wait(30)
    verifier.verify(record, content)  # one check per credential: this one waits
    assert sum(tarpit.accepted.is_set() for tarpit in tarpits) == 1

    verifier.forget(record.key)
    tarpits[0].close()

    assert not checked.wait(record.key, timeout=2)
    assert verifier.checks_for(record, content) == []


def test_at_most_eight_logins_of_a_credential_are_checked(checked, recorder) -> None:
    servers = [f"http://{recorder.address}/r{n}" for n in range(MAX_CHECKED_LOGINS + 2)]
    spec = TenantRegistryCredentialSpec.model_validate({
        "registries": [
            {"server": server, "username": "robot", "plainHTTP": True, "passwordSecretRef": {"name": "pw"}}
            for server in servers
        ],
        "verify": {"enabled": True},
    })
    record = CredentialRecord("many", "uid-many", 1, "t", False, spec, None, None, None)
    config = json.dumps({"auths": {server: {"username": "robot", "password": "pw"} for server in servers}}).encode()
    content = ResolvedContent(docker_config=config, content_hash="sha256:many")
    verifier = scheduler(checked)

    verifier.verify(record, content)

    assert checked.wait(record.key)
    results = [check.result for check in verifier.checks_for(record, content)]
    assert results == ["Valid"] * MAX_CHECKED_LOGINS + ["Unsupported"] * 2
    assert recorder.connections == 2 * MAX_CHECKED_LOGINS  # challenge and answer, per login checked
