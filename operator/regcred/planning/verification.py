"""Registry verification, the pure parts: which logins to check, where, and what the results mean.

The HTTP exchange itself is in `regcred.registry`; here are the docker config's
logins, the registry API's base URL for a docker config key, the parsing of a
`WWW-Authenticate` challenge, and the CredentialsValid condition from the checks.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from regcred.models import RegistryCheck, RegistryCredentialSpec
from regcred.planning.caps import MAX_CONDITION_MESSAGE_CHARS, capped_join

__all__ = [
    "CREDENTIALS_VALID",
    "MAX_CHECKED_LOGINS",
    "Challenge",
    "RegistryLogin",
    "api_base_url",
    "as_told_to_tenant",
    "credentials_condition",
    "logins",
    "over_the_limit",
    "parse_challenge",
    "plain_http_servers",
    "retry_delay",
    "unsettled",
]

CREDENTIALS_VALID = "CredentialsValid"
# Docker Hub's docker config key is not where its registry API lives.
DOCKER_HUB_KEYS = {"index.docker.io", "docker.io", "registry-1.docker.io"}
DOCKER_HUB_API = "https://registry-1.docker.io"
# Logins checked per credential (the first ones by server): a docker config may name any
# number of registries, and each check may take its whole deadline.
MAX_CHECKED_LOGINS = 8


@dataclass(frozen=True)
class RegistryLogin:
    """One `auths` entry: the server key and its username and password (None when absent)."""

    server: str
    username: str | None
    password: str | None = field(repr=False)


def logins(docker_config: bytes) -> list[RegistryLogin]:
    """Every entry of a rendered docker config, sorted by server."""
    auths = json.loads(docker_config)["auths"]
    found = []
    for server in sorted(auths):
        entry = auths[server]
        username, password = entry.get("username"), entry.get("password")
        if not (username and password) and entry.get("auth"):
            try:
                username, _, password = base64.b64decode(entry["auth"]).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                username, password = None, None
        found.append(RegistryLogin(server, username or None, password or None))
    return found


def plain_http_servers(spec: RegistryCredentialSpec) -> frozenset[str]:
    """The servers whose registries entry says plainHTTP: true, the only ones checked without TLS."""
    return frozenset(registry.server for registry in spec.registries if registry.plain_http)


def api_base_url(server: str) -> str:
    """`https://host[:port]` for a docker config key (host[:port][/path], maybe with a scheme)."""
    without_scheme = re.sub(r"^[a-z]+://", "", server)
    host = without_scheme.split("/", 1)[0]
    if host in DOCKER_HUB_KEYS:
        return DOCKER_HUB_API
    scheme = "http" if server.startswith("http://") else "https"
    return f"{scheme}://{host}"


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "basic" or "bearer"
    params: dict[str, str]


_PARAM = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def parse_challenge(header: str) -> Challenge | None:
    """The first challenge of a WWW-Authenticate header, or None if there is none."""
    header = header.strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    params = {
        match.group(1).lower(): match.group(2) if match.group(2) is not None else match.group(3)
        for match in _PARAM.finditer(rest)
    }
    return Challenge(scheme.lower(), params)


def over_the_limit(login: RegistryLogin, now: str) -> RegistryCheck:
    """The check of a login past MAX_CHECKED_LOGINS: none."""
    message = f"not checked: at most {MAX_CHECKED_LOGINS} registries are checked per credential"
    return RegistryCheck(server=login.server, result="Unsupported", message=message, checked_at=now)


# What a tenant is told: yes, no, or not allowed. Which of no's many causes (refused,
# unreachable, TLS, an odd answer) would tell what answers where on the operator's network.
_TOLD_TO_TENANT = {
    "Valid": ("Valid", "the registry accepted the credentials"),
    "RefusedByPolicy": ("RefusedByPolicy", "not checked: the platform's policy does not allow this check"),
}
_UNCONFIRMED = ("Unconfirmed", "the registry did not accept the credentials, or could not be asked")


def as_told_to_tenant(check: RegistryCheck) -> RegistryCheck:
    """A check as a TenantRegistryCredential's status shows it: nothing learnt from the network."""
    if check.result == "Unsupported":
        return check  # said from the credential's own content, before any connection
    result, message = _TOLD_TO_TENANT.get(check.result, _UNCONFIRMED)
    return check.model_copy(update={"result": result, "message": message})


# From the worst result down: the condition names the worst one found.
_CONDITION_FOR = (
    ("Rejected", "False", "CredentialsRejected"),
    ("RefusedByPolicy", "False", "RefusedByPolicy"),
    ("Unconfirmed", "False", "CredentialsUnconfirmed"),
    ("TLSError", "False", "RegistryTLSError"),
    ("Unreachable", "False", "RegistryUnreachable"),
    ("Error", "False", "RegistryError"),
    ("Unsupported", "Unknown", "NotVerified"),
    ("Anonymous", "Unknown", "NotVerified"),
)


def credentials_condition(checks: Sequence[RegistryCheck]) -> tuple[str, str, str]:
    """(status, reason, message) of CredentialsValid; Pending until the first checks are in."""
    if not checks:
        return "Unknown", "Pending", "the registries have not been checked yet"
    for result, status, reason in _CONDITION_FOR:
        bad = [check for check in checks if check.result == result]
        if bad:
            named = [f"{check.server}: {check.message}" for check in bad]
            return status, reason, capped_join(named, MAX_CONDITION_MESSAGE_CHARS)
    return "True", "Verified", f"all {len(checks)} registries accepted their credentials"


# Results that say nothing about the credentials themselves: worth asking again soon.
UNSETTLED_RESULTS = frozenset({"Unreachable", "TLSError", "Error"})


def unsettled(checks: Sequence[RegistryCheck]) -> bool:
    """Whether some registry could not give a verdict on its login."""
    return any(check.result in UNSETTLED_RESULTS for check in checks)


def retry_delay(checks: Sequence[RegistryCheck], interval: float, failures: int) -> float:
    """Seconds to the next check: the interval, or sooner with backoff while a registry is unreachable."""
    if unsettled(checks):
        return min(interval, 30.0 * 2 ** min(failures, 10))
    return interval
