"""Bearer-token logins against the real distribution registry with ``auth: token``.

The harness is checked first (the registry challenges with Bearer, verifies the token's
signature, audience and access, and crane pushes and reads through it); then
`regcred.registry.check_login` and the operator's spec.verify go through the whole flow:
challenge, token from the realm with Basic credentials, /v2/ again with the token.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from registryserver import TOKEN_SERVICE_NAME, TokenRegistryServer
from test_verification import verified_login

from regcred.planning.verification import RegistryLogin
from regcred.registry import check_login

NOW = "2026-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def pushed(token_registry: TokenRegistryServer) -> str:
    return token_registry.push_image(f"bearer/{uuid.uuid4().hex[:8]}", "v1")


def repository_of(reference: str) -> str:
    return reference.split("/", 1)[1].rsplit(":", 1)[0]


def token_for(registry: TokenRegistryServer, scope: str | None = None) -> str:
    reply = registry.fetch_token(registry.username, registry.password, scope)
    assert reply.status == 200, reply.body
    return json.loads(reply.body)["token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- the harness is a real token-auth registry ---------------------------------------


def test_anonymous_api_root_is_challenged_with_bearer(token_registry: TokenRegistryServer) -> None:
    reply = token_registry.get("/v2/")

    assert reply.status == 401
    realm = token_registry.token_service.realm
    assert reply.headers["WWW-Authenticate"] == f'Bearer realm="{realm}",service="{TOKEN_SERVICE_NAME}"'


def test_token_service_refuses_a_wrong_password(token_registry: TokenRegistryServer) -> None:
    reply = token_registry.fetch_token(token_registry.username, token_registry.password + "-wrong")

    assert reply.status == 401


def test_registry_checks_the_token_signature_audience_and_access(
    token_registry: TokenRegistryServer, pushed: str
) -> None:
    assert token_registry.get("/v2/", bearer(token_for(token_registry))).status == 200

    # A flipped signature byte, or a token for another service, is not accepted.
    good = token_for(token_registry)
    tampered = good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1]
    other_audience = token_registry.token_service.issue(token_registry.username, [], audience="elsewhere")
    for token in (tampered, other_audience):
        assert token_registry.get("/v2/", bearer(token)).status == 401

    # The access claim counts: the /v2/ token cannot read a manifest, a pull-scoped one can.
    repository = repository_of(pushed)
    manifest = f"/v2/{repository}/manifests/v1"
    scoped = token_for(token_registry, f"repository:{repository}:pull")
    oci = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    assert token_registry.get(manifest, {**oci, **bearer(good)}).status == 401
    assert token_registry.get(manifest, {**oci, **bearer(scoped)}).status == 200


def test_crane_reads_with_valid_credentials_only(
    token_registry: TokenRegistryServer, pushed: str, tmp_path: Path
) -> None:
    valid = token_registry.write_docker_config(tmp_path / "valid")
    wrong = token_registry.write_docker_config(tmp_path / "wrong", password=token_registry.password + "-x")

    read = token_registry.crane(["manifest", pushed], valid)
    refused = token_registry.crane(["manifest", pushed], wrong)

    assert read.returncode == 0, read.stderr
    assert json.loads(read.stdout)["schemaVersion"] == 2
    assert refused.returncode != 0
    assert "401 Unauthorized" in refused.stderr, refused.stderr


# -- check_login and the operator through the Bearer flow ----------------------------


def check(registry: TokenRegistryServer, password: str):
    login = RegistryLogin(server=registry.address, username=registry.username, password=password)
    return check_login(login, NOW, str(registry.ca_file))


def test_check_login_accepts_the_right_password_through_a_bearer_token(
    token_registry: TokenRegistryServer,
) -> None:
    result = check(token_registry, token_registry.password)

    assert (result.server, result.result) == (token_registry.address, "Valid")
    assert "Bearer" in result.message
    assert token_registry.password not in result.message


def test_check_login_reports_the_token_service_refusing_a_wrong_password(
    token_registry: TokenRegistryServer,
) -> None:
    wrong = f"wrong-{uuid.uuid4().hex}"

    result = check(token_registry, wrong)

    assert result.result == "Rejected"
    assert "token service" in result.message and "401" in result.message
    assert wrong not in result.message and token_registry.password not in result.message


@pytest.fixture
def bearer_operator(operator_with, token_registry: TokenRegistryServer):
    """The session operator, restarted to trust the token registry's CA; restored afterwards."""
    return operator_with(registry_ca_file=str(token_registry.ca_file))


@pytest.mark.usefixtures("crd_installed", "bearer_operator")
def test_operator_verifies_credentials_for_a_token_registry(
    token_registry: TokenRegistryServer, make_namespace, credentials, sources, wait_for
) -> None:
    # verified_login asserts CredentialsValid True/Verified, the check Valid, no password.
    _, _, registry_check = verified_login(token_registry, make_namespace, credentials, sources, wait_for)

    assert "Bearer" in registry_check["message"]
