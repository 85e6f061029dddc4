"""The GitHub Actions workflows, which cannot run here: linted by the pinned actionlint,
every action pinned by commit, and each job doing what README's "Releases" says.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gotools import go_tool
from regcred_dev.release.tools import ACTIONLINT

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
# owner/repo[/path]@<commit> # vX[.Y[.Z]]: the commit is what runs, the comment says which release.
PINNED_USE = re.compile(
    r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[A-Za-z0-9_./-]+)?@[0-9a-f]{40} # v\d+(\.\d+){0,2}$"
)
USES_LINE = re.compile(r"^\s*(-\s+)?uses:\s*(?P<rest>.*)$")


def workflow(name: str) -> dict[Any, Any]:
    # YAML 1.1 reads the key `on` as True.
    document = yaml.safe_load((REPO / ".github" / "workflows" / name).read_text())
    document["on"] = document.pop(True)
    return document


def steps_text(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) for step in job["steps"])


def uses(job: dict[str, Any]) -> list[str]:
    return [step["uses"].split("@")[0] for step in job["steps"] if "uses" in step]


def test_there_are_the_two_workflows() -> None:
    assert [path.name for path in WORKFLOWS] == ["ci.yml", "release.yml"]


def test_actionlint_reports_nothing() -> None:
    # shellcheck and pyflakes, when on PATH, would make the result depend on the machine.
    result = subprocess.run(
        [str(go_tool(ACTIONLINT)), "-no-color", "-shellcheck=", "-pyflakes=", *map(str, WORKFLOWS)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_every_action_is_pinned_by_commit_with_its_release_named(path: Path) -> None:
    found = [
        match.group("rest").strip()
        for line in path.read_text().splitlines()
        if (match := USES_LINE.match(line))
    ]
    assert found
    for use in found:
        assert PINNED_USE.match(use), f"{path.name}: {use!r} is not owner/repo@<40-hex commit> # vX"


def test_the_same_action_is_pinned_to_the_same_commit_everywhere() -> None:
    pins: dict[str, set[str]] = {}
    for path in WORKFLOWS:
        for line in path.read_text().splitlines():
            if match := USES_LINE.match(line):
                action, _, pin = match.group("rest").partition("@")
                pins.setdefault(action, set()).add(pin)
    assert {action: pin for action, pin in pins.items() if len(pin) > 1} == {}


def test_pull_requests_run_make_test() -> None:
    ci = workflow("ci.yml")
    assert "pull_request" in ci["on"]
    (job,) = ci["jobs"].values()
    assert "bash .ci/run" in steps_text(job)
    assert "make test" in (REPO / ".ci" / "run").read_text()
    assert ci["permissions"] == {"contents": "read"}


def test_a_version_tag_runs_make_release_multi_arch_to_ghcr_signed_keyless() -> None:
    release = workflow("release.yml")
    assert release["on"] == {"push": {"tags": ["v[0-9]+.[0-9]+.[0-9]+"]}}
    job = release["jobs"]["release"]
    script = steps_text(job)
    assert re.search(r"make release VERSION=\S+ REGISTRY=\"ghcr\.io/", script)
    assert "KEYLESS=true" in script and "PLATFORMS=linux/amd64,linux/arm64" in script
    assert {"docker/setup-qemu-action", "docker/setup-buildx-action", "docker/login-action"} <= set(uses(job))
    assert job["permissions"] == {"contents": "write", "packages": "write", "id-token": "write"}
    # The release notes are CHANGELOG.md's entry for the version.
    assert "regcred-dev release notes" in script and "--notes-file" in script


def test_the_wheel_goes_to_pypi_by_trusted_publishing() -> None:
    pypi = workflow("release.yml")["jobs"]["pypi"]
    assert pypi["needs"] == "release"
    assert pypi["permissions"] == {"id-token": "write"}  # no token: trusted publishing
    assert pypi["environment"]["name"] == "pypi"
    assert "pypa/gh-action-pypi-publish" in uses(pypi)
    publish = next(step for step in pypi["steps"] if "pypi-publish" in step.get("uses", ""))
    assert "password" not in publish.get("with", {})
