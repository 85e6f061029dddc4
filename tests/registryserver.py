"""The tests' registries: the package's `RegistryServer` (regcred_dev.kind.registry) on
127.0.0.1 with TLS and htpasswd, and `TokenRegistryServer`, the same with token auth.

The registry and crane binaries are the package's pinned `REGISTRY` and `CRANE`
(``$REGCRED_REGISTRY`` and ``$REGCRED_CRANE`` name binaries to use instead);
`pinned_binaries` builds them once, failing the test if a build fails.

`TokenRegistryServer` is the registry with ``auth: token``: a `TokenService`
(tests/tokenservice.py) on another 127.0.0.1 port, serving with the same certificate,
hands out signed tokens to the same user and password.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path

from gotools import go_tool
from tokenservice import TOKEN_PATH, TokenService

from regcred_dev.kind.registry import (
    CRANE,
    REGISTRY,
    RegistryError,
    RegistryServer,
    Reply,
    basic_authorization,
    https_get,
)

__all__ = [
    "CRANE",
    "REGISTRY",
    "TOKEN_SERVICE_NAME",
    "RegistryError",
    "RegistryServer",
    "Reply",
    "TokenRegistryServer",
    "pinned_binaries",
]

# auth: token — the registry accepts tokens naming this service (aud) and issuer (iss).
TOKEN_SERVICE_NAME = "regcred-test-registry"
TOKEN_ISSUER = "regcred-test-token-service"


def pinned_binaries() -> dict[str, Path]:
    """The ``registry_bin`` and ``crane_bin`` arguments of a registry, built once."""
    return {"registry_bin": go_tool(REGISTRY), "crane_bin": go_tool(CRANE)}


class TokenRegistryServer(RegistryServer):
    """The registry with ``auth: token``: `GET /v2/` challenges with ``Bearer realm=...``.

    The token service (`token_service`, started and stopped with the registry) takes
    the same `username` and `password` that `RegistryServer` puts in htpasswd, so the
    docker config and crane helpers work unchanged.
    """

    def __init__(self, registry_bin: Path | None = None, crane_bin: Path | None = None) -> None:
        super().__init__(registry_bin, crane_bin)
        self._token_service: TokenService | None = None

    @property
    def token_service(self) -> TokenService:
        if self._token_service is None:
            raise RegistryError("the registry has not been started")
        return self._token_service

    def fetch_token(self, username: str, password: str, scope: str | None = None) -> Reply:
        """Ask the token service for a token as a client would, for this registry's service."""
        query = {"service": TOKEN_SERVICE_NAME, "account": username}
        if scope:
            query["scope"] = scope
        return https_get(
            self.token_service.address,
            f"{TOKEN_PATH}?{urllib.parse.urlencode(query)}",
            self.ssl_context(),
            {"Authorization": basic_authorization(username, password)},
        )

    def stop(self) -> None:
        """Stop the registry, then the token service (it is in-process: a thread)."""
        super().stop()
        service, self._token_service = self._token_service, None
        if service is not None:
            service.stop()

    def _auth_config(self) -> dict[str, object]:
        """Start the token service and return an ``auth: token`` section that trusts it."""
        self._token_service = TokenService(
            username=self.username,
            password=self.password,
            issuer=TOKEN_ISSUER,
            service=TOKEN_SERVICE_NAME,
            tls=self.pki.serving,
            folder=self.workdir / "token",
        )
        self._token_service.start()
        return {
            "token": {
                "realm": self._token_service.realm,
                "service": TOKEN_SERVICE_NAME,
                "issuer": TOKEN_ISSUER,
                "rootcertbundle": str(self._token_service.root_cert_bundle),
            }
        }

