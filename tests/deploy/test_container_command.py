"""The image's command and the Deployments' args, read together as the kubelet joins them.

Each half once had a test of its own and both passed while every Pod crash-looped on
`regcred run run`; only the joined command proves anything. tests/image/ runs it for real.
"""

from __future__ import annotations

import logging

import pytest
from dockerfile import runtime_command
from manifests import DEPLOY, only

from regcred.cli import build_parser, log_level_from_args


@pytest.fixture(params=["kustomize", "helm"])
def deployment_args(request, kustomize, helm_template) -> list[str]:
    manifests = kustomize(DEPLOY) if request.param == "kustomize" else helm_template()
    (container,) = only(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert "command" not in container, "the image's ENTRYPOINT is the command"
    return container["args"]


def test_the_deployment_runs_the_operator_with_its_flags(deployment_args: list[str]) -> None:
    script, *arguments = runtime_command(deployment_args)
    assert script == "regcred"
    parsed = build_parser().parse_args(arguments)  # exits (fails the test) on `run run`
    assert parsed.command == "run" and parsed.leader_elect


@pytest.mark.parametrize("extra", [["--verbose"], ["-v"], ["--log-level", "debug"]])
def test_logging_flags_appended_to_the_deployments_args_are_accepted(
    deployment_args: list[str], extra: list[str]
) -> None:
    """An overlay or values file adds flags at the end of args, after `run`: once a CrashLoopBackOff."""
    script, *arguments = runtime_command([*deployment_args, *extra])
    parsed = build_parser().parse_args(arguments)
    assert parsed.command == "run" and parsed.leader_elect
    assert log_level_from_args(parsed, {}) == logging.DEBUG


def test_a_flag_placed_by_the_charts_extra_args_is_accepted_as_the_image_runs_it(helm_template) -> None:
    """extraArgs land after `run` and the chart's flags; the real parser must take them there."""
    manifests = helm_template("--set", "extraArgs={--verbose,--resync-seconds=60}")
    (container,) = only(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    script, *arguments = runtime_command(container["args"])
    assert script == "regcred"
    parsed = build_parser().parse_args(arguments)
    assert parsed.command == "run" and parsed.leader_elect and parsed.resync_seconds == 60
    assert log_level_from_args(parsed, {}) == logging.DEBUG
