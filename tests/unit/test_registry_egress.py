"""Where `check_login` connects, and for how long: plain HTTP, the address policy, the deadline.

The servers are real sockets on 127.0.0.1 (tests/fakeregistry.py); nothing is mocked.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest
from fakeregistry import RecordingRegistry, Tarpit

from regcred.planning.destinations import DestinationPolicy
from regcred.planning.verification import RegistryLogin
from regcred.registry import Egress, check_login

NOW = "2026-01-01T00:00:00Z"
ANYWHERE = None  # the platform's own credentials
PUBLIC_ONLY = DestinationPolicy()


def login(server: str) -> RegistryLogin:
    return RegistryLogin(server, "robot", "s3cret-password")


@pytest.fixture
def recorder() -> Iterator[RecordingRegistry]:
    server = RecordingRegistry()
    yield server
    server.close()


@pytest.mark.parametrize(
    ("server", "egress", "result", "connections"),
    [
        # plain HTTP only when the entry says so
        ("http://{address}", Egress(ANYWHERE, plain_http=False), "RefusedByPolicy", 0),
        ("http://{address}", Egress(ANYWHERE, plain_http=True), "Valid", 2),
        # the loopback is no public address; the platform may allow it by network or by name
        ("http://{address}", Egress(PUBLIC_ONLY, plain_http=True), "RefusedByPolicy", 0),
        ("{address}", Egress(PUBLIC_ONLY), "RefusedByPolicy", 0),
        ("http://{address}", Egress(DestinationPolicy.allowing(["10.0.0.0/8"]), plain_http=True), "RefusedByPolicy", 0),
        ("http://{address}", Egress(DestinationPolicy.allowing(["127.0.0.1/32"]), plain_http=True), "Valid", 2),
        ("http://localhost:{port}", Egress(DestinationPolicy.allowing(["localhost"]), plain_http=True), "Valid", 2),
        ("http://localhost:{port}", Egress(DestinationPolicy.allowing(["127.0.0.1/32"]), plain_http=True), "Valid", 2),
        ("http://localhost:{port}", Egress(DestinationPolicy.allowing(["other.example"]), plain_http=True), "RefusedByPolicy", 0),
    ],
)
def test_plain_http_and_the_address_policy(
    recorder: RecordingRegistry, server: str, egress: Egress, result: str, connections: int
) -> None:
    check = check_login(login(server.format(address=recorder.address, port=recorder.port)), NOW, egress=egress)

    assert (check.result, recorder.connections) == (result, connections), check.message
    assert "s3cret-password" not in check.message


def test_a_bearer_realm_is_held_to_the_same_rule_as_the_registry() -> None:
    token_service = RecordingRegistry()
    registry = RecordingRegistry(f'Bearer realm="http://{token_service.address}/token",service="r"')
    try:
        server = f"http://localhost:{registry.port}"
        allowed_by_name = Egress(DestinationPolicy.allowing(["localhost"]), plain_http=True)
        refused = check_login(login(server), NOW, egress=allowed_by_name)
        assert (refused.result, token_service.connections) == ("RefusedByPolicy", 0), refused.message

        # The platform's own credentials follow the realm, as long as plain HTTP was asked for.
        assert check_login(login(server), NOW, egress=Egress(ANYWHERE, plain_http=True)).result == "Valid"
        assert token_service.paths == ["/token?account=robot&service=r"]
    finally:
        registry.close()
        token_service.close()


def test_an_https_registry_may_not_name_a_plain_http_realm() -> None:
    token_service = RecordingRegistry()
    # The registry itself speaks plain HTTP here only so that the test needs no certificate;
    # what counts is that the entry did not ask for plain HTTP.
    registry = RecordingRegistry(f'Bearer realm="http://{token_service.address}/token"')
    try:
        check = check_login(login(f"http://{registry.address}"), NOW, egress=Egress(ANYWHERE, plain_http=False))
        assert (check.result, registry.connections, token_service.connections) == ("RefusedByPolicy", 0, 0)
    finally:
        registry.close()
        token_service.close()


class Trickle:
    """A server that answers one byte at a time, each within any per-socket timeout, forever."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            connection, _ = self._listener.accept()
            with connection:
                connection.sendall(b"HTTP/1.1 401 Unauthorized\r\n")
                while not self.stop.wait(0.05):
                    connection.sendall(b"X")  # a header line that never ends

    def close(self) -> None:
        self.stop.set()
        self._listener.close()


def test_the_deadline_covers_the_whole_exchange_not_each_read() -> None:
    trickle = Trickle()
    try:
        check = check_login(login(f"http://{trickle.address}"), NOW, egress=Egress(ANYWHERE, True, deadline_seconds=1.0))
    finally:
        trickle.close()
    assert (check.result, check.message) == ("Unreachable", "cannot connect: no answer within 1s")


def test_a_silent_server_is_left_at_the_deadline() -> None:
    tarpit = Tarpit()
    try:
        check = check_login(login(tarpit.address), NOW, egress=Egress(ANYWHERE, deadline_seconds=0.5))
        assert check.result == "Unreachable"
        assert tarpit.hung_up.wait(30), "the connection was not closed at the deadline"
    finally:
        tarpit.close()
