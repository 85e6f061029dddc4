"""Registry verification's pure parts: logins, API address, challenges, the condition."""

from __future__ import annotations

import base64
import json

import pytest

from regcred.models import RegistryCheck
from regcred.planning.verification import (
    RegistryLogin,
    api_base_url,
    as_told_to_tenant,
    credentials_condition,
    logins,
    parse_challenge,
    retry_delay,
)


def test_logins_read_username_and_password_or_the_auth_field():
    config = json.dumps({"auths": {
        "b.example": {"auth": base64.b64encode(b"bob:pa:ss").decode()},
        "a.example": {"username": "alice", "password": "pw", "auth": "ignored"},
        "c.example": {"identitytoken": "opaque"},
        "d.example": {"auth": "%%%"},
    }}).encode()
    assert logins(config) == [
        RegistryLogin("a.example", "alice", "pw"),
        RegistryLogin("b.example", "bob", "pa:ss"),  # split at the first ':' as registries do
        RegistryLogin("c.example", None, None),
        RegistryLogin("d.example", None, None),
    ]


def test_a_login_never_shows_its_password():
    assert "pw" not in repr(RegistryLogin("a.example", "alice", "pw"))


@pytest.mark.parametrize(
    ("server", "url"),
    [
        ("registry.acme.example:5000", "https://registry.acme.example:5000"),
        ("https://index.docker.io/v1/", "https://registry-1.docker.io"),
        ("docker.io", "https://registry-1.docker.io"),
        ("ghcr.io/acme", "https://ghcr.io"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ],
)
def test_api_base_url(server, url):
    assert api_base_url(server) == url


@pytest.mark.parametrize(
    ("header", "scheme", "params"),
    [
        ('Basic realm="Registry Realm"', "basic", {"realm": "Registry Realm"}),
        (
            'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull"',
            "bearer",
            {"realm": "https://auth.example/token", "service": "registry.example", "scope": "repository:a:pull"},
        ),
        ("Bearer realm=https://auth.example/token, service=reg", "bearer",
         {"realm": "https://auth.example/token", "service": "reg"}),
        ('Basic realm="with \\"quotes\\""', "basic", {"realm": 'with \\"quotes\\"'}),
    ],
)
def test_parse_challenge(header, scheme, params):
    challenge = parse_challenge(header)
    assert challenge is not None and (challenge.scheme, challenge.params) == (scheme, params)


def test_no_challenge():
    assert parse_challenge("") is None


def check(server: str, result: str) -> RegistryCheck:
    return RegistryCheck(server=server, result=result, message=f"{result.lower()} here", checked_at="t")


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        ([], ("Unknown", "Pending")),
        (["Valid", "Valid"], ("True", "Verified")),
        (["Valid", "Rejected", "Unreachable"], ("False", "CredentialsRejected")),
        (["Valid", "Unreachable", "TLSError"], ("False", "RegistryTLSError")),
        (["Valid", "Unreachable"], ("False", "RegistryUnreachable")),
        (["Valid", "Error"], ("False", "RegistryError")),
        (["Valid", "Anonymous"], ("Unknown", "NotVerified")),
        (["Unsupported"], ("Unknown", "NotVerified")),
        (["Valid", "RefusedByPolicy", "Unconfirmed"], ("False", "RefusedByPolicy")),
        (["Valid", "Unconfirmed", "Unsupported"], ("False", "CredentialsUnconfirmed")),
    ],
)
def test_credentials_condition_names_the_worst_result(results, expected):
    checks = [check(f"r{i}.example", result) for i, result in enumerate(results)]
    status, reason, message = credentials_condition(checks)
    assert (status, reason) == expected
    if status == "False":
        # The message names the registries behind the verdict, not the ones that passed.
        assert "r0.example" not in message and ".example: " in message


@pytest.mark.parametrize(
    ("results", "failures", "delay"),
    [
        (["Valid"], 0, 3600.0),
        (["Rejected"], 0, 3600.0),  # a refusal will not change by asking again soon
        (["Unreachable"], 1, 60.0),
        (["Unreachable"], 3, 240.0),
        (["TLSError"], 20, 3600.0),
    ],
)
def test_retry_delay_backs_off_while_unreachable(results, failures, delay):
    assert retry_delay([check("r.example", r) for r in results], 3600.0, failures) == delay


@pytest.mark.parametrize(
    ("result", "told"),
    [
        ("Valid", "Valid"),
        ("Rejected", "Unconfirmed"),
        ("Unreachable", "Unconfirmed"),
        ("TLSError", "Unconfirmed"),
        ("Error", "Unconfirmed"),
        ("Anonymous", "Unconfirmed"),  # a 200 without credentials is an answer from the network too
        ("RefusedByPolicy", "RefusedByPolicy"),
    ],
)
def test_a_tenant_is_told_yes_no_or_refused_and_nothing_of_the_network(result: str, told: str) -> None:
    raw = RegistryCheck(
        server="10.0.0.5:5000", result=result, message="cannot connect: connection refused (HTTP 401) realm", checked_at="t"
    )
    shown = as_told_to_tenant(raw)
    assert (shown.server, shown.result, shown.checked_at) == ("10.0.0.5:5000", told, "t")
    assert not any(word in shown.message for word in ("connect", "HTTP", "401", "realm", "TLS"))


def test_what_the_credential_itself_says_is_told_as_it_is() -> None:
    unsupported = RegistryCheck(server="r.example", result="Unsupported", message="the entry has no username", checked_at="t")
    assert as_told_to_tenant(unsupported) == unsupported
