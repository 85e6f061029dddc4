"""Docker config entries, rendering, merging and parsing."""

from __future__ import annotations

import base64
import traceback

import pytest

from regcred.errors import SourceInvalidConfigError
from regcred.planning.dockerconfig import (
    AuthSource,
    content_hash,
    kubectl_auth_entry,
    merge_auths,
    parse_docker_config,
    render_docker_config,
)

# Stands for a password in malformed input; no error message may repeat it.
CANARY = "hunter2-CANARY"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("username", "password", "email", "expected"),
    [
        pytest.param(
            "robot",
            "s3cret",
            "ci@acme.example",
            [
                ("username", "robot"),
                ("password", "s3cret"),
                ("email", "ci@acme.example"),
                ("auth", b64("robot:s3cret")),
            ],
            id="with email",
        ),
        pytest.param(
            "robot",
            "s3cret",
            None,
            [("username", "robot"), ("password", "s3cret"), ("auth", b64("robot:s3cret"))],
            id="without email",
        ),
        pytest.param(
            "robot",
            "s3cret",
            "",
            [("username", "robot"), ("password", "s3cret"), ("auth", b64("robot:s3cret"))],
            id="empty email omitted",
        ),
        pytest.param(
            "robot",
            "a:b",
            None,
            [("username", "robot"), ("password", "a:b"), ("auth", b64("robot:a:b"))],
            id="colon in password kept in auth",
        ),
        pytest.param(
            "élodie",
            "pässword",
            None,
            [("username", "élodie"), ("password", "pässword"), ("auth", b64("élodie:pässword"))],
            id="auth is base64 of UTF-8",
        ),
    ],
)
def test_kubectl_auth_entry(
    username: str, password: str, email: str | None, expected: list[tuple[str, str]]
) -> None:
    # Key order is part of the byte format, so compare items, not dicts.
    assert list(kubectl_auth_entry(username, password, email).items()) == expected


@pytest.mark.parametrize(
    ("auths", "expected"),
    [
        pytest.param({}, b'{"auths":{}}', id="empty"),
        pytest.param(
            {"b.example": {"auth": "x"}, "a.example": {"auth": "y"}},
            b'{"auths":{"a.example":{"auth":"y"},"b.example":{"auth":"x"}}}',
            id="servers sorted",
        ),
        pytest.param(
            {"r": {"username": "u", "password": "p", "auth": "a"}},
            b'{"auths":{"r":{"username":"u","password":"p","auth":"a"}}}',
            id="entry key order kept, no spaces",
        ),
        pytest.param(
            {"r": {"password": "<a>&b"}},
            b'{"auths":{"r":{"password":"\\u003ca\\u003e\\u0026b"}}}',
            id="Go escapes of <>&",
        ),
        pytest.param(
            {"r": {"password": "line\u2028para\u2029"}},
            b'{"auths":{"r":{"password":"line\\u2028para\\u2029"}}}',
            id="Go escapes of U+2028 and U+2029",
        ),
        pytest.param(
            {"r": {"password": 'é"\\'}},
            '{"auths":{"r":{"password":"é\\"\\\\"}}}'.encode(),
            id="non-ASCII as UTF-8, quotes and backslashes escaped",
        ),
    ],
)
def test_render_docker_config(auths: dict[str, dict[str, str]], expected: bytes) -> None:
    assert render_docker_config(auths) == expected


def source(label: str, **entries: str) -> AuthSource:
    return AuthSource(label, {server: {"auth": value} for server, value in entries.items()})


@pytest.mark.parametrize(
    ("sources", "expected_auths", "expected_overrides"),
    [
        pytest.param([], {}, (), id="nothing"),
        pytest.param(
            [source("A", a="1"), source("B", b="2")],
            {"a": "1", "b": "2"},
            (),
            id="disjoint servers: no overrides",
        ),
        pytest.param(
            [source("A", r="1"), source("B", r="2")],
            {"r": "2"},
            (("r", "B", ("A",)),),
            id="later source wins",
        ),
        pytest.param(
            [source("A", r="1", s="1"), source("B", r="2"), source("C", r="3", t="3")],
            {"r": "3", "s": "1", "t": "3"},
            (("r", "C", ("A", "B")),),
            id="three sources: all losers listed in order",
        ),
        pytest.param(
            [source("A", z="1", y="1"), source("B", z="2", y="2")],
            {"y": "2", "z": "2"},
            (("y", "B", ("A",)), ("z", "B", ("A",))),
            id="overrides sorted by server",
        ),
    ],
)
def test_merge_auths(
    sources: list[AuthSource],
    expected_auths: dict[str, str],
    expected_overrides: tuple[tuple[str, str, tuple[str, ...]], ...],
) -> None:
    merged = merge_auths(sources)
    assert {server: entry["auth"] for server, entry in merged.auths.items()} == expected_auths
    assert merged.overrides == expected_overrides


def test_parse_docker_config_returns_the_auths() -> None:
    raw = b'{"auths":{"r.example":{"auth":"eA=="}},"credsStore":"desktop"}'
    assert parse_docker_config(raw, "ref") == {"r.example": {"auth": "eA=="}}


@pytest.mark.parametrize(
    ("raw", "expected_message"),
    [
        pytest.param(
            b"\xff\xfe" + CANARY.encode(),
            "ref: .dockerconfigjson is not UTF-8",
            id="not UTF-8",
        ),
        pytest.param(
            f'{{"auths": {{"r": {{"password": "{CANARY}"'.encode(),
            "ref: .dockerconfigjson is not valid JSON (line 1, column 46)",
            id="truncated JSON",
        ),
        pytest.param(
            f'{{"auths": {{"r": {{"password": {CANARY}}}}}}}'.encode(),
            "ref: .dockerconfigjson is not valid JSON (line 1, column 30)",
            id="unquoted password",
        ),
        pytest.param(
            f'{{"r.example": {{"password": "{CANARY}"}}}}'.encode(),
            "ref: .dockerconfigjson has no 'auths' object",
            id="legacy dockercfg without auths",
        ),
        pytest.param(
            f'["{CANARY}"]'.encode(),
            "ref: .dockerconfigjson has no 'auths' object",
            id="not an object",
        ),
        pytest.param(
            f'{{"auths": ["{CANARY}"]}}'.encode(),
            "ref: .dockerconfigjson has no 'auths' object",
            id="auths not an object",
        ),
        pytest.param(
            f'{{"auths": {{"r.example": "{CANARY}"}}}}'.encode(),
            "ref: auths entry for 'r.example' is not an object",
            id="entry not an object",
        ),
    ],
)
def test_parse_docker_config_errors_never_show_content(raw: bytes, expected_message: str) -> None:
    with pytest.raises(SourceInvalidConfigError) as raised:
        parse_docker_config(raw, "ref")
    assert str(raised.value) == expected_message
    # Logged tracebacks too: a chained decoder error would carry the document.
    assert CANARY not in "".join(traceback.format_exception(raised.value))


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        pytest.param(b"abc", b"abc", True, id="same bytes"),
        pytest.param(b"abc", b"abd", False, id="one byte differs"),
    ],
)
def test_content_hash(first: bytes, second: bytes, same: bool) -> None:
    digest = content_hash(first)
    assert digest.startswith("sha256:") and len(digest) == len("sha256:") + 32
    assert (digest == content_hash(second)) is same
