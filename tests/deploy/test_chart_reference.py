"""The chart's values: values.yaml, values.schema.json and docs/chart.md agree, and Helm
refuses a misspelt value instead of ignoring it.

A new value needs a comment in values.yaml and an entry in values.schema.json, then
`python hack/chart_reference.py > docs/chart.md`; these tests say which part is missing.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from manifests import CHART, REPO

SCHEMA = json.loads((CHART / "values.schema.json").read_text())
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())


def _generator() -> ModuleType:
    """hack/chart_reference.py, loaded as a module (hack/ is a folder of scripts)."""
    spec = importlib.util.spec_from_file_location(
        "chart_reference", REPO / "hack" / "chart_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


GENERATOR = _generator()


def _groups(schema: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """The schema's objects that list their properties: the root ("") and every group."""
    yield prefix, schema
    for name, node in schema["properties"].items():
        if "properties" in node:
            yield from _groups(node, f"{prefix}{name}.")


def _value_keys(values: dict[str, Any], schema: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Every key values.yaml sets, down to the schema's values (free-form ones not entered)."""
    for name, value in values.items():
        path = f"{prefix}{name}"
        yield path
        node = schema["properties"].get(name, {})
        if isinstance(value, dict) and "properties" in node:
            yield from _value_keys(value, node, f"{path}.")


def helm(helm_bin: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run helm on the chart, returning what it said, success or not."""
    return subprocess.run(
        [str(helm_bin), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_the_committed_reference_is_generated_from_the_values():
    committed = (REPO / "docs" / "chart.md").read_text()
    assert committed == GENERATOR.render(), "run: python hack/chart_reference.py > docs/chart.md"


def test_every_value_is_in_the_schema_and_every_schema_value_has_a_default():
    in_values = set(_value_keys(VALUES, SCHEMA))
    in_schema = {path for path, _ in GENERATOR._entries(SCHEMA)}
    assert in_values - in_schema == set(), "values.yaml keys missing from values.schema.json"
    assert in_schema - in_values == set(), "values.schema.json keys with no default in values.yaml"


def test_every_value_is_described():
    rows = GENERATOR.chart_values()
    described_groups = {row.path for row in rows if row.type == "group"}
    undescribed = [
        row.path
        for row in rows
        if row.type != "group"
        and not row.description
        and row.path.rpartition(".")[0] not in described_groups
    ]
    assert undescribed == [], "give these a comment in values.yaml (or their group one)"


def test_every_group_of_the_schema_refuses_unknown_keys():
    open_groups = [
        path or "(root)"
        for path, node in _groups(SCHEMA)
        if node.get("additionalProperties") is not False
    ]
    assert open_groups == []


def test_helm_lint_strict_accepts_the_defaults(helm_bin: Path):
    result = helm(helm_bin, "lint", "--strict", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "group", [path for path, _ in _groups(SCHEMA)], ids=lambda path: path or "root"
)
def test_a_misspelt_value_is_refused_by_name(helm_bin: Path, group: str):
    misspelt = f"{group}enabeld"
    result = helm(helm_bin, "template", "regcred-operator", str(CHART), "--set", f"{misspelt}=true")
    assert result.returncode != 0, f"--set {misspelt}=true was accepted"
    assert "'enabeld' not allowed" in result.stderr


def test_a_value_of_the_wrong_type_is_refused(helm_bin: Path):
    result = helm(
        helm_bin,
        "template",
        "regcred-operator",
        str(CHART),
        "--set",
        "tenantBoundary.enabled=yes please",
    )
    assert result.returncode != 0
    assert "tenantBoundary/enabled" in result.stderr


def install_notes(helm_bin: Path, *flags: str) -> str:
    """What `helm install` prints after installing (NOTES.txt), rendered without a cluster."""
    result = helm(
        helm_bin,
        "install",
        "regcred-operator",
        str(CHART),
        "--namespace",
        "regcred-system",
        "--dry-run=client",
        *flags,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.partition("NOTES:")[2]


def test_the_install_notes_say_how_to_check_it_and_that_crds_need_upgrading(helm_bin: Path):
    notes = install_notes(helm_bin, "--set", "image.repository=registry.example.com/team/op")

    assert "kubectl -n regcred-system rollout status deployment/regcred-operator" in notes
    assert "registry.example.com/team/op:" in notes
    assert "Helm never upgrades the CRDs" in notes
    assert "WARNING" not in notes


def test_the_install_notes_warn_of_a_tenant_label_without_its_boundary(helm_bin: Path):
    unguarded = install_notes(helm_bin, "--set", "tenantLabel=example.com/tenant")
    guarded = install_notes(
        helm_bin, "--set", "tenantLabel=example.com/tenant", "--set", "tenantBoundary.enabled=true"
    )

    assert "WARNING: tenantBoundary.enabled is false" in unguarded
    assert "WARNING" not in guarded
