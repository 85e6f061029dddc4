"""Check registry logins against the registry HTTP API v2, as `docker login` does.

`GET /v2/` without credentials; on 401, answer the challenge: Basic with the
username and password, or Bearer by fetching a token from the realm with them and
retrying with it. Redirects are not followed, so credentials never go to a host
the registry did not name. Results and messages never carry secret material.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from email.message import Message

from regcred.models import RegistryCheck
from regcred.planning.verification import RegistryLogin, api_base_url, parse_challenge

__all__ = ["check_login"]

TIMEOUT_SECONDS = 10.0


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # the 3xx comes back as an HTTPError, reported as an unexpected answer


class _Refused(Exception):
    """The registry or its token service said no to the credentials."""


class _Unexpected(Exception):
    """An answer a registry API v2 does not give."""


def _get(
    opener: urllib.request.OpenerDirector, url: str, authorization: str | None
) -> tuple[int, Message, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": authorization} if authorization else {})
    try:
        with opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            return response.status, response.headers, response.read(1 << 20)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, b""


def _expect_accepted(status: int, what: str) -> None:
    if status in (401, 403):
        raise _Refused(f"{what} refused the username and password (HTTP {status})")
    if status != 200:
        raise _Unexpected(f"{what} answered HTTP {status}")


def _bearer_token(
    opener: urllib.request.OpenerDirector, params: dict[str, str], login: RegistryLogin, basic: str
) -> str:
    realm = params.get("realm", "")
    if not realm.startswith(("https://", "http://")):
        raise _Unexpected("the Bearer challenge names no token service")
    query = {"account": login.username}
    if params.get("service"):
        query["service"] = params["service"]
    separator = "&" if "?" in realm else "?"
    status, _, body = _get(opener, f"{realm}{separator}{urllib.parse.urlencode(query)}", basic)
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


def _verdict(opener: urllib.request.OpenerDirector, login: RegistryLogin) -> tuple[str, str]:
    assert login.username and login.password
    base = api_base_url(login.server)
    status, headers, _ = _get(opener, f"{base}/v2/", None)
    if status == 200:
        return "Anonymous", "the registry answers without credentials, so they were not tested"
    if status != 401:
        raise _Unexpected(f"GET /v2/ answered HTTP {status}")
    challenge = parse_challenge(headers.get("WWW-Authenticate", ""))
    userpass = f"{login.username}:{login.password}".encode()
    basic = "Basic " + base64.b64encode(userpass).decode("ascii")
    if challenge is None or challenge.scheme == "basic":
        status, _, _ = _get(opener, f"{base}/v2/", basic)
        _expect_accepted(status, "the registry")
        return "Valid", "the registry accepted the credentials (Basic)"
    if challenge.scheme == "bearer":
        token = _bearer_token(opener, challenge.params, login, basic)
        status, _, _ = _get(opener, f"{base}/v2/", f"Bearer {token}")
        _expect_accepted(status, "the registry, given the token,")
        return "Valid", "the registry accepted the credentials (Bearer token)"
    raise _Unexpected(f"unknown authentication scheme {challenge.scheme!r}")


def check_login(login: RegistryLogin, now: str, ca_file: str | None = None) -> RegistryCheck:
    """Check one login; `ca_file` adds a CA bundle to the system's trusted ones."""
    if not (login.username and login.password):
        result, message = "Unsupported", "the entry has no username and password (tokens are not checked)"
        return RegistryCheck(server=login.server, result=result, message=message, checked_at=now)
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _NoRedirects())
    try:
        result, message = _verdict(opener, login)
    except _Refused as refused:
        result, message = "Rejected", str(refused)
    except _Unexpected as unexpected:
        result, message = "Error", str(unexpected)
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, ssl.SSLError):
            result, message = "TLSError", f"TLS failed: {getattr(reason, 'verify_message', None) or reason.reason}"
        else:
            result, message = "Unreachable", f"cannot connect: {_reason(reason)}"
    except ssl.SSLError as error:
        result, message = "TLSError", f"TLS failed: {getattr(error, 'verify_message', None) or error.reason}"
    except (TimeoutError, socket.timeout, ConnectionError, OSError) as error:
        result, message = "Unreachable", f"cannot connect: {_reason(error)}"
    return RegistryCheck(server=login.server, result=result, message=message, checked_at=now)


def _reason(error: object) -> str:
    if isinstance(error, socket.gaierror):
        return "the host name does not resolve"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, TimeoutError | socket.timeout):
        return f"no answer within {TIMEOUT_SECONDS:.0f}s"
    return type(error).__name__ if isinstance(error, BaseException) else str(error)
