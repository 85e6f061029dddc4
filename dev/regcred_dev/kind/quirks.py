"""Host quirks that stop kind nodes, detected by trying, and what gets past them.

1. ``docker run --privileged`` fails with "unable to apply caps" when the host's
   capability bounding set lacks a capability Docker asks for. Fix: a runc wrapper
   (`regcred_dev.kind.runcwrapper`) registered with dockerd as runtime ``regcred-runc``
   (daemon.json merged, dockerd sent SIGHUP), and a ``docker`` shim first on kind's
   PATH that adds ``--runtime=regcred-runc`` to ``docker run``/``create``. The default
   runtime is left alone, so other containers on the host behave as before.
2. Inside such a node containerd cannot lower ``oom_score_adj`` (that needs
   CAP_SYS_RESOURCE) and every pod sandbox fails. Fix: ``restrict_oom_score_adj``
   in the node's containerd config. Detected by trying to lower it in a privileged
   container started the way kind starts its nodes.

On a host without the quirks nothing is installed and nothing is changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from regcred_dev.controlplane.build import cache_root
from regcred_dev.kind.docker import DockerError, docker_client, progress, run_docker

__all__ = [
    "RUNTIME_NAME",
    "HostQuirks",
    "caps_quirk_in",
    "docker_shim_script",
    "install_capability_runtime",
    "merged_daemon_config",
    "oom_score_adj_lowerable",
    "privileged_run_works",
]

RUNTIME_NAME = "regcred-runc"
DAEMON_CONFIG_ENV = "REGCRED_DOCKER_DAEMON_JSON"
DEFAULT_DAEMON_CONFIG = Path("/etc/docker/daemon.json")
DOCKER_PID_FILE = Path("/var/run/docker.pid")
CAPS_ERROR = "unable to apply caps"
# What the CRI asks for a pod sandbox: an oom_score_adj of -998. Lowering the score
# below the minimum a process inherited needs CAP_SYS_RESOURCE.
OOM_PROBE = "if echo -998 > /proc/self/oom_score_adj; then echo lowered; else echo refused; fi"


@dataclass(frozen=True)
class HostQuirks:
    """What was found on this host, and the runtime to pass to kind's docker runs."""

    privileged_caps_fail: bool
    oom_score_adj_restricted: bool

    @property
    def runtime(self) -> str | None:
        return RUNTIME_NAME if self.privileged_caps_fail else None

    def describe(self) -> list[str]:
        """Human-readable lines for ``regcred-dev kind build``."""
        return [
            "privileged containers fail to apply caps: "
            + (
                f"yes (kind's nodes run with runtime {RUNTIME_NAME})"
                if self.privileged_caps_fail
                else "no"
            ),
            "oom_score_adj cannot be lowered in a node: "
            + (
                "yes (containerd: restrict_oom_score_adj = true)"
                if self.oom_score_adj_restricted
                else "no"
            ),
        ]


def caps_quirk_in(output: str) -> bool:
    """Whether a failed docker run's output is the capability quirk."""
    return CAPS_ERROR in output


def privileged_run_works(image: str, command: list[str], runtime: str | None = None) -> bool:
    """Run `command` in a ``--privileged`` container of a local `image`.

    Returns False on the capability quirk, True on success; any other failure raises.
    """
    runtime_args = [f"--runtime={runtime}"] if runtime else []
    try:
        run_docker(
            [
                "run",
                "--rm",
                "--privileged",
                *runtime_args,
                "--entrypoint",
                command[0],
                image,
                *command[1:],
            ],
            timeout=120,
        )
    except DockerError as error:
        if caps_quirk_in(str(error)):
            return False
        raise
    return True


def oom_score_adj_lowerable(image: str, runtime: str | None) -> bool:
    """Whether a privileged container (as kind runs nodes) may lower its oom_score_adj."""
    runtime_args = [f"--runtime={runtime}"] if runtime else []
    output = run_docker(
        [
            "run",
            "--rm",
            "--privileged",
            *runtime_args,
            "--entrypoint",
            "/bin/sh",
            image,
            "-c",
            OOM_PROBE,
        ],
        timeout=120,
    )
    return output.split()[-1:] == ["lowered"]


def merged_daemon_config(current: dict[str, Any], runtime_path: Path) -> dict[str, Any]:
    """dockerd's config with runtime ``regcred-runc`` added; every other key kept."""
    merged = dict(current)
    runtimes = dict(merged.get("runtimes") or {})
    runtimes[RUNTIME_NAME] = {"path": str(runtime_path)}
    merged["runtimes"] = runtimes
    return merged


def docker_shim_script(real_docker: str, runtime: str) -> str:
    """A ``docker`` that adds ``--runtime=RUNTIME`` to ``run`` and ``create``, for kind."""
    return (
        "#!/bin/sh\n"
        "# regcred: kind's privileged node containers need a runtime that drops the\n"
        "# capabilities this host cannot grant; every other docker call is passed on.\n"
        'case "$1" in\n'
        f'  run|create) command="$1"; shift; exec "{real_docker}" "$command" --runtime={runtime} "$@" ;;\n'
        "esac\n"
        f'exec "{real_docker}" "$@"\n'
    )


def install_capability_runtime() -> Path:
    """Install the runc wrapper, register it with dockerd, and return the shim folder.

    The returned folder holds a ``docker`` shim to put first on kind's PATH.
    """
    real_runc = shutil.which("runc")
    if real_runc is None:
        raise DockerError("runc is not on PATH; cannot install the capability-filtering runtime")
    source = resources.files(__package__).joinpath("runcwrapper.py").read_text()
    # The interpreter binary itself: dockerd runs the runtime with a bare environment,
    # where a venv or pyenv shim on PATH would not resolve.
    python = Path(sys.executable).resolve()
    wrapper_text = f"#!{python}\n" + source.replace(
        'REAL_RUNC = "runc"', f"REAL_RUNC = {real_runc!r}", 1
    )
    digest = hashlib.sha256(wrapper_text.encode()).hexdigest()[:12]
    folder = cache_root() / "kind" / f"runtime-{digest}"
    wrapper = folder / RUNTIME_NAME
    shim_folder = folder / "shim"
    shim_folder.mkdir(parents=True, exist_ok=True)
    if not wrapper.is_file() or wrapper.read_text() != wrapper_text:
        _write_executable(wrapper, wrapper_text)
    shim_text = docker_shim_script(docker_client(), RUNTIME_NAME)
    _write_executable(shim_folder / "docker", shim_text)
    _register_runtime(wrapper)
    return shim_folder


def _write_executable(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.chmod(0o755)
    partial.rename(path)


def _registered_runtimes() -> dict[str, Any]:
    output = run_docker(["info", "--format", "{{json .Runtimes}}"])
    runtimes: dict[str, Any] = json.loads(output or "{}")
    return runtimes


def _register_runtime(wrapper: Path) -> None:
    registered = _registered_runtimes().get(RUNTIME_NAME)
    if isinstance(registered, dict) and registered.get("path") == str(wrapper):
        return
    config_path = Path(os.environ.get(DAEMON_CONFIG_ENV, DEFAULT_DAEMON_CONFIG))
    current: dict[str, Any] = json.loads(config_path.read_text()) if config_path.is_file() else {}
    merged = merged_daemon_config(current, wrapper)
    config_path.parent.mkdir(parents=True, exist_ok=True)
    partial = config_path.with_name(config_path.name + ".regcred-partial")
    partial.write_text(json.dumps(merged, indent=2) + "\n")
    partial.rename(config_path)
    progress(f"registered runtime {RUNTIME_NAME} in {config_path}; asking dockerd to reload")
    # dockerd reloads `runtimes` from daemon.json on SIGHUP, without restarting containers.
    try:
        pid = int(DOCKER_PID_FILE.read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError) as error:
        raise DockerError(
            f"could not signal dockerd ({error}); reload it so it reads {config_path}"
        ) from error
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        registered = _registered_runtimes().get(RUNTIME_NAME)
        if isinstance(registered, dict) and registered.get("path") == str(wrapper):
            return
        time.sleep(0.5)
    raise DockerError(f"dockerd did not pick up runtime {RUNTIME_NAME} from {config_path}")
