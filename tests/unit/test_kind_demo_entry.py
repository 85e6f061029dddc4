"""`make demo-kind` runs `regcred-dev kind demo`, whose parser and manifests hold together."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from regcred.models import RegistryCredentialSpec
from regcred_dev.cli import build_parser, run_kind_demo_command
from regcred_dev.kind import demo

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_kind_runs_regcred_kind_demo() -> None:
    # -n prints the recipe without running it; the venv prerequisite counts as made.
    result = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", "demo-kind", "KIND_ARGS=--keep"],
        cwd=REPO, capture_output=True, text=True, check=True, timeout=30,
    )
    assert ".venv/bin/regcred-dev kind demo --keep" in result.stdout.splitlines()


@pytest.mark.parametrize(
    ("argv", "name", "keep"),
    [
        (["kind", "demo"], "regcred-demo", False),
        (["kind", "demo", "--name", "mine", "--keep"], "mine", True),
    ],
)
def test_regcred_kind_demo_parses_to_the_demo_handler(argv: list[str], name: str, keep: bool) -> None:
    args = build_parser().parse_args(argv)

    assert args.handler is run_kind_demo_command
    assert (args.name, args.keep, args.source, args.kubeconfig) == (name, keep, Path("."), None)


def test_the_demo_credential_is_a_valid_spec_that_restarts_stuck_pods() -> None:
    body = demo.registry_credential("regcred-demo-registry:5000", "demo")

    spec = RegistryCredentialSpec.model_validate(body["spec"])

    assert spec.restart_stuck_pods is True
    assert body["spec"]["registries"][0]["passwordSecretRef"]["name"] == demo.SOURCE_SECRET
    assert body["spec"]["namespaceSelector"] == {"matchLabels": dict([demo.TENANT_LABEL])}


def test_the_demo_deployment_carries_no_pull_secret_of_its_own() -> None:
    # The point of the demo: the operator's ServiceAccount entry is what lets it pull.
    pod = demo.deployment("registry:5000/tenants/app:v1", pull_policy="Always")["spec"]["template"]

    assert "imagePullSecrets" not in pod["spec"]
    assert pod["metadata"]["labels"] == {"app": demo.APP}
