"""A generated entry is byte-identical to what `kubectl create secret docker-registry` makes.

Byte identity lets users diff a replica against a hand-made Secret and keeps the
content hash stable across operator and kubectl-made secrets. kubectl runs with
--dry-run=client, so no API server is needed; it is the project's pinned build.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

from regcred.planning.dockerconfig import kubectl_auth_entry, render_docker_config


def kubectl_docker_config(
    kubectl: Path, home: Path, server: str, username: str, password: str, email: str | None
) -> bytes:
    command = [
        str(kubectl),
        "create",
        "secret",
        "docker-registry",
        "probe",
        f"--docker-server={server}",
        f"--docker-username={username}",
        f"--docker-password={password}",
        "--dry-run=client",
        "--output=json",
    ]
    if email is not None:
        command.append(f"--docker-email={email}")
    # An empty HOME keeps any user kubeconfig out of a command that needs none.
    secret = json.loads(
        subprocess.run(
            command, env={"HOME": str(home)}, capture_output=True, check=True, timeout=30
        ).stdout
    )
    return base64.b64decode(secret["data"][".dockerconfigjson"])


@pytest.mark.parametrize(
    ("server", "username", "password", "email"),
    [
        pytest.param(
            "registry.acme.example:5000", "robot-ci", "s3cret", "ci@acme.example", id="plain"
        ),
        pytest.param("ghcr.io", "bot", "<p>&'\"\\/", "a&b@example.com", id="html-and-json-escapes"),
        pytest.param("registry.example", "élodie", "mot-de-passé", None, id="non-ascii-no-email"),
        pytest.param(
            "https://index.docker.io/v1/",
            "u",
            "tab\tbackspace\bbell\x07sep\u2028",
            None,
            id="control-characters",
        ),
    ],
)
def test_render_matches_kubectl_byte_for_byte(
    kubectl: Path, tmp_path: Path, server: str, username: str, password: str, email: str | None
) -> None:
    ours = render_docker_config({server: kubectl_auth_entry(username, password, email)})
    assert ours == kubectl_docker_config(kubectl, tmp_path, server, username, password, email)
