"""The probe server answers each check's verdict as an HTTP status."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from regcred.health import HealthServer, parse_address


def _failing_check() -> tuple[bool, str]:
    raise RuntimeError("token=do-not-print")


CHECKS = {
    "/healthz": lambda: (True, "ok"),
    "/readyz": lambda: (False, "caches are filling"),
    "/broken": _failing_check,
}


@pytest.fixture(scope="module")
def server():
    probe = HealthServer("127.0.0.1:0", CHECKS).start()
    yield probe
    probe.stop()


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/healthz", 200, "ok"),
        ("/healthz?verbose", 200, "ok"),
        ("/readyz", 503, "caches are filling"),
        # The exception's message might carry anything: only its type is told.
        ("/broken", 503, "check failed: RuntimeError"),
        ("/metrics", 404, "not found"),
    ],
)
def test_probe_answers(server, path, status, body):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=5) as response:
            answer = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        answer = error.code, error.read().decode()
    assert answer == (status, body + "\n")


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (":8080", ("0.0.0.0", 8080)),
        ("127.0.0.1:9000", ("127.0.0.1", 9000)),
        ("[::1]:9000", ("::1", 9000)),
    ],
)
def test_parse_address(address, expected):
    assert parse_address(address) == expected
