"""What docs/settings.md says about installing: each chart value sets its flag or
variable, the variables deploy/ sets are ones the operator reads, and the page's
kustomize example patch does what it says."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pytest
from manifests import DEPLOY, Manifest, only
from settingspage import SETTINGS_PAGE, settings_generator

from regcred.cli import LOG_LEVEL_VARIABLE, build_parser, log_level_from_args
from regcred.config import VARIABLES, OperatorConfig, settings_from_env

# A value each chart value can take other than its default.
SAMPLES = {
    "sourceNamespaces": "{team-secrets}",
    "excludedNamespaces": "{monitoring}",
    "tenantLabel": "example.com/tenant",
    "registryCA.configMap": "registry-ca",
    "leaderElection.enabled": "false",
    "logLevel": "debug",
    "tenantVerify.enabled": "true",
    "tenantVerify.allow": "{harbor.internal}",
}



def container(manifests: list[Manifest]) -> Manifest:
    (found,) = only(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    return found


def what_it_sets(manifests: list[Manifest], setting: str) -> object:
    """The flag's occurrences in args, or the variable's value in env."""
    operator = container(manifests)
    if setting.startswith("-"):
        return [arg for arg in operator["args"] if arg.split("=")[0] == setting]
    return next((item.get("value") for item in operator["env"] if item["name"] == setting), None)


@pytest.mark.parametrize(("setting", "value"), sorted(settings_generator().CHART_VALUES.items()))
def test_each_chart_value_on_the_page_sets_its_flag_or_variable(helm_template, setting: str, value: str) -> None:
    single = ("--set", "replicaCount=1")  # a replica without leader election is allowed only alone
    changed = helm_template(*single, "--set", f"{value}={SAMPLES[value]}")
    assert what_it_sets(changed, setting) != what_it_sets(helm_template(*single), setting)


def test_deploy_sets_only_variables_the_operator_reads(kustomize, helm_template) -> None:
    known = {*VARIABLES, LOG_LEVEL_VARIABLE, "POD_NAMESPACE"}
    for manifests in (kustomize(DEPLOY), helm_template()):
        assert {item["name"] for item in container(manifests)["env"]} <= known


def test_the_pages_kustomize_example_sets_the_log_level_and_exclusions(kustomize, tmp_path: Path) -> None:
    page = SETTINGS_PAGE.read_text()
    (example,) = re.findall(r"```yaml\n(.*?)```", page, re.S)
    (tmp_path / "kustomization.yaml").write_text(
        f"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources: [{os.path.relpath(DEPLOY, tmp_path)}]\n{example}"
    )
    operator = container(kustomize(tmp_path))
    environ = {item["name"]: item["value"] for item in operator["env"] if "value" in item}
    args = build_parser().parse_args(operator["args"])
    assert log_level_from_args(args, environ) == logging.DEBUG
    config = OperatorConfig(**settings_from_env(environ))
    assert {"monitoring", "sandbox", "kube-system"} <= config.excluded_namespaces
