"""A minimal registry token service (the Docker token authentication flow) for tests.

It serves ``GET /token`` over HTTPS on 127.0.0.1 from a thread: the client names the
registry (``service``) and what it wants (``scope``, ``repository:<name>:<actions>``)
and proves who it is with Basic auth. Wrong or missing credentials get a 401; right
ones get a JWT the registry's ``auth: token`` checks:

- the header carries ``x5c``, the signing certificate, which the registry verifies
  against its ``rootcertbundle`` (that same self-signed certificate), and ``alg``
  ES256, one of the registry's default algorithms;
- the claims carry ``iss`` (its ``issuer``), ``aud`` (its ``service``), ``exp`` and
  ``nbf``, and ``access``: nothing for a bare ``/v2/`` check, the requested pull and
  push actions for repository scopes (the one user may use every repository).
"""

from __future__ import annotations

import base64
import datetime
import hmac
import json
import secrets
import ssl
import threading
import time
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from regcred_dev.controlplane.certs import KeyPairFiles

__all__ = ["TOKEN_PATH", "TokenService"]

LOCALHOST = "127.0.0.1"
REALM_HOST = "localhost"
TOKEN_PATH = "/token"
TOKEN_SECONDS = 300
GRANTABLE_ACTIONS = ("pull", "push")
# ES256 signatures in a JWS are r and s as two fixed-size big-endian integers.
P256_COORDINATE_BYTES = 32


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json_b64url(document: dict[str, Any]) -> str:
    return _b64url(json.dumps(document, separators=(",", ":")).encode())


def _self_signed(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "regcred-test-token-signer")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # Back-dated, so a slightly skewed clock does not reject a brand-new certificate.
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def granted_access(scopes: list[str]) -> list[dict[str, Any]]:
    """The ``access`` claim for ``scope`` parameters (each may hold several, space-separated)."""
    access = []
    for scope in (item for value in scopes for item in value.split()):
        # The name may hold a colon (a registry with a port), the type and actions may not.
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        wanted = [action for action in actions.split(",") if action in GRANTABLE_ACTIONS]
        if kind == "repository" and name and wanted:
            access.append({"type": kind, "name": name, "actions": wanted})
    return access


class TokenService:
    """The token service as a context manager; `realm` and `root_cert_bundle` configure the registry.

    `tls` is the PEM serving certificate (for 127.0.0.1 and localhost) and its key; the
    signing certificate is written into `folder`.
    """

    def __init__(
        self,
        *,
        username: str,
        password: str,
        issuer: str,
        service: str,
        tls: KeyPairFiles,
        folder: Path,
    ) -> None:
        self.username, self._password = username, password
        self.issuer, self.service = issuer, service
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._tls.load_cert_chain(tls.cert, tls.key)
        self.root_cert_bundle = folder / "token-signing.crt"
        self._signing_key = ec.generate_private_key(ec.SECP256R1())
        certificate = _self_signed(self._signing_key)
        folder.mkdir(parents=True, exist_ok=True)
        self.root_cert_bundle.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        # x5c holds standard (not URL-safe) base64 DER, leaf first.
        der = certificate.public_bytes(serialization.Encoding.DER)
        self._x5c = [base64.b64encode(der).decode("ascii")]
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the token service has not been started")
        return int(self._server.server_address[1])

    @property
    def address(self) -> str:
        return f"{LOCALHOST}:{self.port}"

    @property
    def realm(self) -> str:
        # By name, not 127.0.0.1: crane (go-containerregistry) refuses a realm that is a
        # loopback or private IP literal on another port than the registry's (an SSRF
        # guard), while names are left to DNS. The serving certificate covers localhost.
        return f"https://{REALM_HOST}:{self.port}{TOKEN_PATH}"

    def start(self) -> None:
        # Port 0: the kernel picks a free port, so there is no race with other listeners.
        self._server = _TlsServer((LOCALHOST, 0), _handler_for(self), self._tls)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="regcred-token-service", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> TokenService:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def accepts(self, authorization: str | None) -> bool:
        """Whether the ``Authorization`` header is Basic with the one user and password."""
        scheme, _, encoded = (authorization or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            username, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        # compare_digest: the test should not teach a timing side channel by example.
        return hmac.compare_digest(username.encode(), self.username.encode()) and hmac.compare_digest(
            password.encode(), self._password.encode()
        )

    def issue(self, subject: str, access: list[dict[str, Any]], audience: str | None = None) -> str:
        """A signed JWT for `subject` with `access`, for this service's registry unless `audience`."""
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": self._x5c}
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service if audience is None else audience,
            "exp": now + TOKEN_SECONDS,
            "nbf": now,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": access,
        }
        signing_input = f"{_json_b64url(header)}.{_json_b64url(claims)}"
        der = self._signing_key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        raw = r.to_bytes(P256_COORDINATE_BYTES, "big") + s.to_bytes(P256_COORDINATE_BYTES, "big")
        return f"{signing_input}.{_b64url(raw)}"


class _TlsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        context: ssl.SSLContext,
    ) -> None:
        self._context = context
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The handshake runs here, in the request's thread, so one stalled client
        # cannot hold up the accept loop; a client that rejects our certificate
        # (a test checking TLS) is not an error of the service.
        try:
            request = self._context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        super().finish_request(request, client_address)


def _handler_for(service: TokenService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
            url = urllib.parse.urlsplit(self.path)
            if url.path != TOKEN_PATH:
                self._reply(HTTPStatus.NOT_FOUND, {"details": "not found"})
                return
            if not service.accepts(self.headers.get("Authorization")):
                self._reply(
                    HTTPStatus.UNAUTHORIZED,
                    {"details": "incorrect username or password"},
                    {"WWW-Authenticate": 'Basic realm="regcred-test-token-service"'},
                )
                return
            query = urllib.parse.parse_qs(url.query)
            if query.get("service", [service.service]) != [service.service]:
                self._reply(HTTPStatus.BAD_REQUEST, {"details": "unknown service"})
                return
            token = service.issue(service.username, granted_access(query.get("scope", [])))
            issued_at = datetime.datetime.now(datetime.UTC).isoformat()
            # Both names: older clients read "token", OAuth-minded ones "access_token".
            body = {
                "token": token,
                "access_token": token,
                "expires_in": TOKEN_SECONDS,
                "issued_at": issued_at,
            }
            self._reply(HTTPStatus.OK, body)

        def _reply(
            self,
            status: HTTPStatus,
            body: dict[str, Any],
            headers: dict[str, str] | None = None,
        ) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
            pass  # quiet: pytest would show every request as captured stderr

    return Handler
