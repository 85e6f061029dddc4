"""The chart's extraArgs, extraEnv and registryCA values: what they render, and what the
chart refuses. The defaults add nothing (test_chart.py keeps them the kustomize base's)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from manifests import CHART, Manifest, only

from regcred.cli import build_parser

CA_FOLDER = "/etc/regcred/registry-ca"


def pod_spec(manifests: list[Manifest]) -> Manifest:
    spec: Manifest = only(manifests, "Deployment")["spec"]["template"]["spec"]
    return spec


def operator_container(manifests: list[Manifest]) -> Manifest:
    (container,) = pod_spec(manifests)["containers"]
    return container


def refusal(helm_bin: Path, *flags: str) -> str:
    """What helm says refusing to render the chart with these flags."""
    result = subprocess.run(
        [str(helm_bin), "template", "regcred-operator", str(CHART), *flags],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode != 0, f"{' '.join(flags)} was accepted"
    return result.stderr


def test_extra_args_come_after_the_charts_own(helm_template) -> None:
    default_args = operator_container(helm_template())["args"]
    args = operator_container(
        helm_template(
            "--set", "tenantLabel=example.com/tenant",
            "--set", "extraArgs={--verbose,--resync-seconds=60}",
        )
    )["args"]
    assert args[: len(default_args)] == default_args
    assert args[-3:] == ["--tenant-label=example.com/tenant", "--verbose", "--resync-seconds=60"]


def test_extra_env_entries_follow_the_charts_own(helm_template) -> None:
    default_env = operator_container(helm_template())["env"]
    env = operator_container(
        helm_template(
            "--set", "extraEnv[0].name=REGCRED_CONCURRENCY",
            "--set-string", "extraEnv[0].value=4",
            "--set", "extraEnv[1].name=REGCRED_RESYNC_SECONDS",
            "--set", "extraEnv[1].valueFrom.configMapKeyRef.name=regcred-tuning",
            "--set", "extraEnv[1].valueFrom.configMapKeyRef.key=resync",
        )
    )["env"]
    assert env[: len(default_env)] == default_env
    assert env[len(default_env):] == [
        {"name": "REGCRED_CONCURRENCY", "value": "4"},
        {
            "name": "REGCRED_RESYNC_SECONDS",
            "valueFrom": {"configMapKeyRef": {"name": "regcred-tuning", "key": "resync"}},
        },
    ]


@pytest.mark.parametrize(
    ("source", "volume_source"),
    [
        ("configMap", {"configMap": {"name": "corp-ca", "items": [{"key": "bundle.pem", "path": "ca.crt"}]}}),
        ("secret", {"secret": {"secretName": "corp-ca", "items": [{"key": "bundle.pem", "path": "ca.crt"}]}}),
    ],
)
def test_the_registry_ca_is_mounted_read_only_and_named_by_the_flag(
    helm_template, source: str, volume_source: Manifest
) -> None:
    manifests = helm_template(
        "--set", f"registryCA.{source}=corp-ca", "--set", "registryCA.key=bundle.pem"
    )
    container = operator_container(manifests)
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "registry-ca"]
    (volume,) = [v for v in pod_spec(manifests)["volumes"] if v["name"] == "registry-ca"]

    assert mount == {"name": "registry-ca", "mountPath": CA_FOLDER, "readOnly": True}
    assert volume == {"name": "registry-ca", **volume_source}
    path = volume_source[source]["items"][0]["path"]
    parsed = build_parser().parse_args(container["args"])
    assert parsed.registry_ca_file == f"{mount['mountPath']}/{path}"


def test_without_a_registry_ca_nothing_is_mounted_or_passed(helm_template) -> None:
    manifests = helm_template()
    assert [v["name"] for v in pod_spec(manifests)["volumes"]] == ["tmp"]
    assert not any(arg.startswith("--registry-ca-file") for arg in operator_container(manifests)["args"])


def test_a_registry_ca_from_both_a_configmap_and_a_secret_is_refused(helm_bin: Path) -> None:
    said = refusal(helm_bin, "--set", "registryCA.configMap=a", "--set", "registryCA.secret=b")
    assert "registryCA: set configMap or secret, not both" in said


def test_extra_env_may_not_shadow_a_variable_the_chart_sets(helm_bin: Path) -> None:
    said = refusal(
        helm_bin, "--set", "extraEnv[0].name=REGCRED_LOG_LEVEL", "--set", "extraEnv[0].value=debug"
    )
    assert "REGCRED_LOG_LEVEL is set by the chart" in said


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (("--set", "registryCA.configmap=corp-ca"), "'configmap' not allowed"),
        (("--set", "extraEnv[0].name=A", "--set", "extraEnv[0].vaule=b"), "'vaule' not allowed"),
        (("--set", "extraEnv[0].value=b"), "name"),
        (("--set", "extraArgs[0]="), "extraArgs"),
    ],
)
def test_a_misspelt_or_incomplete_extra_value_is_refused(helm_bin: Path, flags: tuple[str, ...], named: str) -> None:
    assert named in refusal(helm_bin, *flags)
