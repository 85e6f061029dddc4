"""`make release`'s settings reach `regcred-dev release build` as written, and what a release
refuses or prints, without building anything (the real run: tests/kind/test_published_release.py).
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

import regcred
from regcred_dev.cli import build_parser
from regcred_dev.release import (
    ReleaseError,
    ReleaseRecord,
    ReleaseSettings,
    make_release,
    verify_commands,
)

REPO = Path(__file__).resolve().parents[2]


def make_dry_run(*variables: str) -> subprocess.CompletedProcess[str]:
    # INSTALLED= and VENV=: make must not create or check a venv for a dry run.
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), "-n", "release", "INSTALLED=", "BIN=bin", *variables],
        capture_output=True, text=True, timeout=60, check=False,
    )


def release_arguments(*variables: str):
    result = make_dry_run(*variables)
    assert result.returncode == 0, result.stderr
    words = shlex.split(result.stdout.replace("\\\n", " "))
    assert words[:3] == ["bin/regcred-dev", "release", "build"]
    return build_parser().parse_args(words[1:])


def test_the_pipeline_settings_reach_the_command():
    args = release_arguments(
        "VERSION=1.2.3", "REGISTRY=ghcr.io/regcred", "KEYLESS=true",
        "PLATFORMS=linux/amd64,linux/arm64",
    )
    assert (args.version, args.registry, args.keyless) == ("1.2.3", "ghcr.io/regcred", True)
    assert args.platforms == "linux/amd64,linux/arm64"
    assert args.cosign_key is None and not args.local_python_base


def test_the_local_settings_reach_the_command():
    args = release_arguments(
        "VERSION=1.2.3", "COSIGN_KEY=keys/cosign.key", "REGISTRY_CA=ca.pem",
        "PYTHON_IMAGE=my-python:3.12", "RELEASE_DIR=out",
    )
    assert args.registry is None  # artifacts into the folder
    assert (args.cosign_key, args.registry_ca, args.output) == (Path("keys/cosign.key"), Path("ca.pem"), Path("out"))
    assert args.python_image == "my-python:3.12" and not args.keyless


def test_make_release_without_a_version_says_so():
    result = make_dry_run()
    assert result.returncode != 0 and "give VERSION=X.Y.Z" in result.stderr


def test_a_release_without_a_key_or_keyless_is_refused_before_any_work(tmp_path: Path):
    settings = ReleaseSettings(version="0.0.1", source=REPO, output=tmp_path / "out")
    with pytest.raises(ReleaseError, match="COSIGN_KEY"):
        make_release(settings)
    assert not (tmp_path / "out").exists()


def record(registry: str | None, signing: str) -> ReleaseRecord:
    return ReleaseRecord(
        version="1.2.3", registry=registry, signing=signing, revision="abc",
        image={"reference": "r.example/x/regcred-operator@sha256:" + "1" * 64},
        chart={"reference": "r.example/x/charts/regcred-operator@sha256:" + "2" * 64},
    )


def test_verify_commands_with_a_key_and_a_registry_check_the_pushed_digests():
    commands = verify_commands(record("r.example/x", "key"))
    assert commands[0] == "sha256sum --check SHA256SUMS"
    assert "cosign verify --key cosign.pub --insecure-ignore-tlog=true r.example/x/regcred-operator@sha256:" + "1" * 64 in commands
    assert any("verify-blob" in command and "regcred-operator-1.2.3.tgz.sigstore.json" in command for command in commands)


def test_verify_commands_without_a_registry_check_the_saved_layouts():
    commands = verify_commands(record(None, "key"))
    assert "tar -xf regcred-operator-1.2.3.image.oci.tar && cosign verify --key cosign.pub " \
           "--insecure-ignore-tlog=true --local-image regcred-operator-1.2.3.image.oci" in commands
    assert not [command for command in commands if "r.example" in command]


def test_verify_commands_of_a_keyless_release_name_the_workflow_identity():
    commands = verify_commands(record("ghcr.io/regcred", "keyless"))
    assert all("--key" not in command for command in commands)
    assert sum("--certificate-oidc-issuer https://token.actions.githubusercontent.com" in c for c in commands) == 3


def test_a_folder_no_release_made_is_never_replaced(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("mine")
    settings = ReleaseSettings(version=regcred.__version__, source=REPO, output=tmp_path, keyless=True)
    with pytest.raises(ReleaseError, match="not empty"):
        make_release(settings)
    assert (tmp_path / "notes.txt").read_text() == "mine"
