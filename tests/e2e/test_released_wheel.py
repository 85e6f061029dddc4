"""The Python distribution as a user gets it: the wheel and sdist `make release` builds
pass `twine check`, and the wheel installed into a fresh venv gives `regcred` and a
`kubectl regcred` that kubectl finds on PATH and that works against a real API server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import uuid
import venv
import zipfile
from pathlib import Path

import pytest
from shipped import product_files, workshop_files

import regcred
from regcred_dev.release import build_python_distributions

pytestmark = pytest.mark.usefixtures("crd_installed")

REPO = Path(__file__).resolve().parents[2]
VERSION = regcred.__version__


@pytest.fixture(scope="module")
def distributions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The wheel and sdist, built as `make release` builds them (twine check included)."""
    built = build_python_distributions(REPO, tmp_path_factory.mktemp("dist"))
    return {path.suffix: path for path in built}


@pytest.fixture(scope="module")
def fresh_venv(distributions: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with only the wheel (and its dependencies from the package index)."""
    folder = tmp_path_factory.mktemp("venv") / "venv"
    venv.EnvBuilder(with_pip=True).create(folder)
    result = subprocess.run(
        [str(folder / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
         "--quiet", str(distributions[".whl"])],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return folder / "bin"


def test_the_distributions_are_named_for_the_version_and_hold_the_package(distributions):
    wheel, sdist = distributions[".whl"], distributions[".gz"]
    assert wheel.name == f"regcred_operator-{VERSION}-py3-none-any.whl"
    assert sdist.name == f"regcred_operator-{VERSION}.tar.gz"
    names = zipfile.ZipFile(wheel).namelist()
    entry_points = zipfile.ZipFile(wheel).read(
        f"regcred_operator-{VERSION}.dist-info/entry_points.txt"
    ).decode()
    assert "kubectl-regcred = regcred.plugin:main" in entry_points
    assert "regcred = regcred.cli:main" in entry_points
    assert "regcred-dev" not in entry_points
    # The product only: nothing of the workshop (dev/), no tests.
    assert workshop_files(names) == []
    assert {name for name in names if not name.startswith("regcred_operator-")} == product_files()
    with tarfile.open(sdist) as archive:
        members = archive.getnames()
    assert f"regcred_operator-{VERSION}/pyproject.toml" in members
    assert f"regcred_operator-{VERSION}/operator/regcred/__init__.py" in members
    prefix = f"regcred_operator-{VERSION}/operator/"
    assert workshop_files(member.removeprefix(prefix) for member in members if member.startswith(prefix)) == []
    assert not [member for member in members if member.startswith(f"regcred_operator-{VERSION}/dev/")]


def test_the_fresh_venv_has_the_release_version(fresh_venv: Path):
    result = subprocess.run(
        [str(fresh_venv / "python"), "-c",
         "import importlib.metadata as m, regcred; print(m.version('regcred-operator'), regcred.__version__)"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    assert result.stdout.split() == [VERSION, VERSION]


def test_kubectl_finds_the_installed_plugin_and_it_plans_against_the_cluster(
    fresh_venv: Path, cluster, control_plane_bin: Path, tmp_path: Path
):
    # Only the fresh venv and kubectl on PATH: nothing of the test environment leaks in.
    env = {**os.environ, "PATH": os.pathsep.join([str(fresh_venv), str(control_plane_bin), "/usr/bin", "/bin"])}
    env.pop("PYTHONPATH", None)
    kubectl = str(control_plane_bin / "kubectl")

    listed = subprocess.run([kubectl, "plugin", "list", "--name-only"], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert "kubectl-regcred" in listed.stdout, listed.stdout + listed.stderr

    name = f"wheel-{uuid.uuid4().hex[:6]}"
    manifest = tmp_path / "credential.yaml"
    created = subprocess.run(
        [kubectl, "regcred", "create", name, "--server", "registry.example:5000",
         "--username", "robot", "--password-stdin", "--namespaces", "team-*"],
        input="not-a-real-password\n", env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert created.returncode == 0, created.stderr
    manifest.write_text(created.stdout)

    planned = subprocess.run(
        [kubectl, "regcred", "plan", "-f", str(manifest), "-o", "json",
         "--kubeconfig", str(cluster.kubeconfig)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    # 0 or 1: no change or changes; 2 would be an error (no access, a missing module).
    assert planned.returncode in (0, 1), planned.stderr
    (report,) = json.loads(planned.stdout)
    assert report["exists"] is False
    assert sys.executable not in planned.stderr
