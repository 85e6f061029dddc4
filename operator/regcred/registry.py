"""Check registry logins against the registry HTTP API v2, as `docker login` does.

`GET /v2/` without credentials; on 401, answer the challenge: Basic with the
username and password, or Bearer by fetching a token from the realm with them and
retrying with it. Redirects are never followed, so credentials never go to a host
the registry did not name. Results and messages never carry secret material.

Where a check may go is the caller's `Egress`: plain HTTP only when the registry entry
says so (for the realm too), and, for a tenant's credential, only to addresses its
`DestinationPolicy` allows. Each host name is resolved here and the connection made to
the very address judged, so a name that resolves elsewhere the next time gains nothing.
One login's requests share one deadline: a watchdog closes the socket when it passes,
so a server that trickles bytes holds a check no longer than one that says nothing.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass
from email.message import Message

from regcred.models import RegistryCheck
from regcred.planning.destinations import DestinationPolicy
from regcred.planning.verification import RegistryLogin, api_base_url, parse_challenge

__all__ = ["LOGIN_DEADLINE_SECONDS", "Egress", "check_login"]

# Everything one login's check does (resolving, connecting, TLS, up to three requests).
LOGIN_DEADLINE_SECONDS = 20.0
MAX_BODY_BYTES = 1 << 20


@dataclass(frozen=True)
class Egress:
    """Where a check may connect: `destinations` None means anywhere (the platform's own credentials)."""

    destinations: DestinationPolicy | None = None
    plain_http: bool = False  # the registry entry says plainHTTP: true
    deadline_seconds: float = LOGIN_DEADLINE_SECONDS


class _Refused(Exception):
    """The registry or its token service said no to the credentials."""


class _Unexpected(Exception):
    """An answer a registry API v2 does not give."""


class _RefusedByPolicy(Exception):
    """The check would go where it may not: plain HTTP not asked for, or an address not allowed."""


class _Exchange:
    """The requests of one login's check, under one deadline."""

    def __init__(self, context: ssl.SSLContext, egress: Egress) -> None:
        self._context = context
        self._egress = egress
        self._deadline = time.monotonic() + egress.deadline_seconds

    def _remaining(self) -> float:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the check's deadline passed")
        return remaining

    def get(self, url: str, authorization: str | None) -> tuple[int, Message, bytes]:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme == "http" and not self._egress.plain_http:
            raise _RefusedByPolicy(f"{parts.hostname} is named over plain HTTP, and the entry does not say plainHTTP: true")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _Unexpected("a URL that is neither http:// nor https://")
        host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
        live = [self._connect(host, port)]
        watchdog = threading.Timer(self._remaining(), _shut, (live,))
        watchdog.daemon = True
        watchdog.start()
        try:
            if parts.scheme == "https":
                live[0] = self._context.wrap_socket(live[0], server_hostname=host)
                connection: http.client.HTTPConnection = http.client.HTTPSConnection(host, port, context=self._context)
            else:
                connection = http.client.HTTPConnection(host, port)
            connection.sock = live[0]  # connected here, to the address judged: http.client does not connect again
            path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
            connection.request("GET", path, headers={"Authorization": authorization} if authorization else {})
            response = connection.getresponse()
            return response.status, response.headers, response.read(MAX_BODY_BYTES)
        except (OSError, http.client.HTTPException) as error:
            if time.monotonic() >= self._deadline:
                raise TimeoutError("the check's deadline passed") from error
            raise
        finally:
            watchdog.cancel()
            live[0].close()

    def _connect(self, host: str, port: int) -> socket.socket:
        policy = self._egress.destinations
        try:
            found = _resolve(host, port, self._remaining())
        except socket.gaierror:
            if policy is not None:
                # To a tenant, a name that does not resolve looks like one that resolves where it may
                # not go: otherwise the answers would map the names of the operator's network.
                raise _RefusedByPolicy(f"{host} resolves to no address") from None
            raise
        allowed = [entry for entry in found if policy is None or policy.allows(host, entry[4][0])]
        if not allowed:
            raise _RefusedByPolicy(f"{host} resolves to no address the platform allows")
        failure: OSError = ConnectionError("no address to connect to")
        for family, kind, protocol, _, address in allowed:
            sock = socket.socket(family, kind, protocol)
            try:
                sock.settimeout(self._remaining())
                sock.connect(address)
                return sock
            except OSError as error:
                sock.close()
                failure = error
        raise failure


def _shut(live: list[socket.socket]) -> None:
    """The watchdog: wake whatever waits on the socket, whichever stage it is at."""
    try:
        live[0].shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # not connected yet, or closed already: the socket's own timeout ends the wait


def _resolve(host: str, port: int, timeout: float) -> list[tuple]:
    """getaddrinfo within `timeout`: a resolver that stalls would hold the check past its deadline."""
    outcome: list[object] = []

    def lookup() -> None:
        try:
            outcome.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as error:
            outcome.append(error)

    resolver = threading.Thread(target=lookup, name="registry-resolve", daemon=True)
    resolver.start()
    resolver.join(timeout)
    if not outcome:
        raise TimeoutError("the host name did not resolve in time")
    if isinstance(outcome[0], OSError):
        raise outcome[0]
    return outcome[0]  # type: ignore[return-value]


def _expect_accepted(status: int, what: str) -> None:
    if status in (401, 403):
        raise _Refused(f"{what} refused the username and password (HTTP {status})")
    if status != 200:
        raise _Unexpected(f"{what} answered HTTP {status}")


def _bearer_token(exchange: _Exchange, params: dict[str, str], login: RegistryLogin, basic: str) -> str:
    realm = params.get("realm", "")
    if not realm.startswith(("https://", "http://")):
        raise _Unexpected("the Bearer challenge names no token service")
    query = {"account": login.username or ""}
    if params.get("service"):
        query["service"] = params["service"]
    separator = "&" if "?" in realm else "?"
    status, _, body = exchange.get(f"{realm}{separator}{urllib.parse.urlencode(query)}", basic)
    where = f"the token service {urllib.parse.urlsplit(realm).netloc}"
    _expect_accepted(status, where)
    try:
        document = json.loads(body)
        token = document.get("token") or document.get("access_token")
    except (ValueError, AttributeError):
        token = None
    if not isinstance(token, str) or not token:
        raise _Unexpected(f"{where} answered without a token")
    return token


def _verdict(exchange: _Exchange, login: RegistryLogin) -> tuple[str, str]:
    assert login.username and login.password
    base = api_base_url(login.server)
    status, headers, _ = exchange.get(f"{base}/v2/", None)
    if status == 200:
        return "Anonymous", "the registry answers without credentials, so they were not tested"
    if status != 401:
        raise _Unexpected(f"GET /v2/ answered HTTP {status}")
    challenge = parse_challenge(headers.get("WWW-Authenticate", ""))
    userpass = f"{login.username}:{login.password}".encode()
    basic = "Basic " + base64.b64encode(userpass).decode("ascii")
    if challenge is None or challenge.scheme == "basic":
        status, _, _ = exchange.get(f"{base}/v2/", basic)
        _expect_accepted(status, "the registry")
        return "Valid", "the registry accepted the credentials (Basic)"
    if challenge.scheme == "bearer":
        token = _bearer_token(exchange, challenge.params, login, basic)
        status, _, _ = exchange.get(f"{base}/v2/", f"Bearer {token}")
        _expect_accepted(status, "the registry, given the token,")
        return "Valid", "the registry accepted the credentials (Bearer token)"
    raise _Unexpected(f"unknown authentication scheme {challenge.scheme!r}")


def check_login(login: RegistryLogin, now: str, ca_file: str | None = None, egress: Egress | None = None) -> RegistryCheck:
    """Check one login; `ca_file` adds a CA bundle to the system's trusted ones."""
    if not (login.username and login.password):
        result, message = "Unsupported", "the entry has no username and password (tokens are not checked)"
        return RegistryCheck(server=login.server, result=result, message=message, checked_at=now)
    egress = egress or Egress()
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    try:
        result, message = _verdict(_Exchange(context, egress), login)
    except _RefusedByPolicy as refused:
        result, message = "RefusedByPolicy", f"not checked: {refused}"
    except _Refused as refused:
        result, message = "Rejected", str(refused)
    except _Unexpected as unexpected:
        result, message = "Error", str(unexpected)
    except ssl.SSLError as error:
        result, message = "TLSError", f"TLS failed: {getattr(error, 'verify_message', None) or error.reason}"
    except http.client.HTTPException as error:  # neither an OSError nor HTTP: a garbled answer
        result, message = "Error", f"not an HTTP answer ({type(error).__name__})"
    except OSError as error:
        result, message = "Unreachable", f"cannot connect: {_reason(error, egress.deadline_seconds)}"
    return RegistryCheck(server=login.server, result=result, message=message, checked_at=now)


def _reason(error: OSError, deadline: float) -> str:
    if isinstance(error, socket.gaierror):
        return "the host name does not resolve"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, TimeoutError):
        return f"no answer within {deadline:.0f}s"
    return type(error).__name__
