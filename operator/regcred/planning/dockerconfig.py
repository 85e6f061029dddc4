"""Docker config JSON: generate entries as `kubectl create secret docker-registry` does, merge, hash.

The rendered bytes match kubectl's byte for byte (Go's encoding/json: struct
fields in declaration order, map keys sorted, no spaces, `<>&` and U+2028/9
escaped), so a replica diffs cleanly against a hand-made secret.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from regcred.errors import SourceInvalidConfigError

__all__ = [
    "AuthSource",
    "MergedConfig",
    "content_hash",
    "kubectl_auth_entry",
    "merge_auths",
    "parse_docker_config",
    "render_docker_config",
]

_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def kubectl_auth_entry(username: str, password: str, email: str | None) -> dict[str, str]:
    """One `auths` entry, fields in kubectl's order; empty fields are omitted as Go's omitempty does."""
    entry = {"username": username, "password": password}
    if email:
        entry["email"] = email
    entry["auth"] = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return {key: value for key, value in entry.items() if value}


def parse_docker_config(raw: bytes, source: str) -> dict[str, dict[str, Any]]:
    """The `auths` of a .dockerconfigjson; the error names the source, never the content."""
    try:
        document = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise SourceInvalidConfigError(f"{source}: .dockerconfigjson is not UTF-8") from None
    except json.JSONDecodeError as error:
        # Position only: the text around it may be a password.
        raise SourceInvalidConfigError(
            f"{source}: .dockerconfigjson is not valid JSON (line {error.lineno}, column {error.colno})"
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("auths"), dict):
        raise SourceInvalidConfigError(f"{source}: .dockerconfigjson has no 'auths' object")
    auths = document["auths"]
    for server, entry in auths.items():
        if not isinstance(entry, dict):
            raise SourceInvalidConfigError(f"{source}: auths entry for {server!r} is not an object")
    return auths


@dataclass(frozen=True)
class AuthSource:
    """A set of `auths` entries and a label saying where it came from (for status)."""

    label: str
    auths: Mapping[str, Mapping[str, Any]] = field(repr=False)


@dataclass(frozen=True)
class MergedConfig:
    """The merged `auths`, and for each server named twice, which source won."""

    auths: Mapping[str, Mapping[str, Any]] = field(repr=False)
    overrides: tuple[tuple[str, str, tuple[str, ...]], ...]  # (server, used, ignored)


def merge_auths(sources_in_precedence_order: Sequence[AuthSource]) -> MergedConfig:
    """Merge entries; a later source wins over an earlier one for the same server."""
    merged: dict[str, Mapping[str, Any]] = {}
    named_by: dict[str, list[str]] = {}
    for source in sources_in_precedence_order:
        for server, entry in source.auths.items():
            merged[server] = entry
            named_by.setdefault(server, []).append(source.label)
    overrides = tuple(
        (server, labels[-1], tuple(labels[:-1]))
        for server, labels in sorted(named_by.items())
        if len(labels) > 1
    )
    return MergedConfig(auths=merged, overrides=overrides)


def render_docker_config(auths: Mapping[str, Mapping[str, Any]]) -> bytes:
    """Serialize as kubectl does: servers sorted, each entry's own key order kept."""
    text = json.dumps(
        {"auths": {server: auths[server] for server in sorted(auths)}},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    for char, escape in _GO_ESCAPES.items():
        text = text.replace(char, escape)
    return text.encode("utf-8")


def content_hash(data: bytes) -> str:
    """A short, stable fingerprint of secret content, safe to show anywhere."""
    return "sha256:" + hashlib.sha256(data).hexdigest()[:32]
