"""Build the operator's image from a source checkout, on a base made locally when needed.

The Dockerfile's ``RUN --mount`` needs BuildKit: a client with buildx, or a client
before Docker 23 whose built-in BuildKit ``DOCKER_BUILDKIT=1`` turns on (Debian's
docker.io 20.10). Newer clients without buildx cannot build it, so the first client
on PATH that can is chosen.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from regcred_dev.kind.debian import ensure_python_base_image
from regcred_dev.kind.docker import DOCKER_ENV, DockerError, progress

__all__ = ["DEV_IMAGE", "build_operator_image", "buildkit_client"]

# Never pulled: the kind overlay (deploy/kind) runs this tag with imagePullPolicy Never.
DEV_IMAGE = "regcred-operator:dev"
LAST_CLIENT_WITH_LEGACY_BUILDKIT = 22


def buildkit_client() -> str:
    """Return a docker client that can build with BuildKit (``$REGCRED_DOCKER`` wins)."""
    configured = os.environ.get(DOCKER_ENV)
    if configured:
        return configured
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = shutil.which("docker", path=folder)
        if candidate and _builds_with_buildkit(candidate):
            return candidate
    raise DockerError(
        "no docker client on PATH can build with BuildKit: install the buildx plugin, "
        f"or Debian's docker.io, or set {DOCKER_ENV}"
    )


def _builds_with_buildkit(client: str) -> bool:
    def succeeds(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([client, *args], capture_output=True, text=True, timeout=30, check=False)

    if succeeds("buildx", "version").returncode == 0:
        return True
    version = succeeds("version", "--format", "{{.Client.Version}}").stdout.strip()
    major = version.split(".", 1)[0]
    return major.isdigit() and int(major) <= LAST_CLIENT_WITH_LEGACY_BUILDKIT


def build_operator_image(source: Path, tag: str = DEV_IMAGE, base: str | None = None) -> str:
    """Build `source`'s Dockerfile as `tag` and return it.

    `base` is the Python base image; by default one made locally with debootstrap, as
    no registry may be reachable. Docker's layer cache makes a rebuild of unchanged
    sources take seconds.
    """
    base = base or ensure_python_base_image()
    started = time.monotonic()
    command = [
        buildkit_client(), "build", "--quiet",
        "--build-arg", f"PYTHON_IMAGE={base}",
        "--tag", tag, str(source),
    ]
    result = subprocess.run(
        command, env={**os.environ, "DOCKER_BUILDKIT": "1"},
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise DockerError(f"building {tag} from {source} failed:\n{result.stderr[-3000:]}")
    progress(f"built {tag} on {base} in {time.monotonic() - started:.1f} s")
    return tag
