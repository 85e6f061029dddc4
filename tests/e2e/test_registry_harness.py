"""The test registry is a real one: TLS from the test CA, and Basic auth that says no."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from registryserver import RegistryServer


@pytest.fixture(scope="module")
def pushed(registry: RegistryServer) -> str:
    return registry.push_image(f"harness/{uuid.uuid4().hex[:8]}", "v1")


def test_valid_user_reads_the_pushed_manifest(
    registry: RegistryServer, pushed: str, tmp_path: Path
) -> None:
    credentials = registry.write_docker_config(tmp_path / "docker")

    result = registry.crane(["manifest", pushed], credentials)

    assert result.returncode == 0, result.stderr
    manifest = json.loads(result.stdout)
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert len(manifest["layers"]) == 1


def test_wrong_password_is_refused(registry: RegistryServer, pushed: str, tmp_path: Path) -> None:
    credentials = registry.write_docker_config(
        tmp_path / "docker", password=registry.password + "-wrong"
    )

    result = registry.crane(["manifest", pushed], credentials)

    assert result.returncode != 0
    assert "UNAUTHORIZED" in result.stderr, result.stderr


def test_anonymous_pull_is_refused(registry: RegistryServer, pushed: str) -> None:
    result = registry.crane(["manifest", pushed], docker_config_dir=None)

    assert result.returncode != 0
    assert "UNAUTHORIZED" in result.stderr, result.stderr


def test_anonymous_api_root_asks_for_basic_auth(registry: RegistryServer) -> None:
    reply = registry.get("/v2/")

    assert reply.status == 401
    assert reply.headers["WWW-Authenticate"] == f'Basic realm="{registry.realm}"'


def test_valid_basic_credentials_open_the_api_root(registry: RegistryServer) -> None:
    token = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()

    reply = registry.get("/v2/", headers={"Authorization": f"Basic {token}"})

    assert reply.status == 200


def test_tls_is_signed_by_the_test_ca_only(registry: RegistryServer) -> None:
    # Without the test CA the handshake fails: the certificate is really checked.
    context = ssl.create_default_context()
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    with pytest.raises(urllib.error.URLError) as failure:
        opener.open(f"{registry.url}/v2/", timeout=5)
    assert isinstance(failure.value.reason, ssl.SSLCertVerificationError)
