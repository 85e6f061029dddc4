"""Thin helpers around the ``docker`` command line, and a cache of images as tarballs.

Everything here shells out to the docker client, so any engine the client reaches
works and nothing depends on a Docker SDK. Builds use only ``docker import``,
``run``, ``cp``, ``exec`` and ``commit``: no BuildKit or buildx is needed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TextIO

from regcred_dev.controlplane.build import exclusive_lock

__all__ = [
    "DOCKER_ENV",
    "DockerError",
    "docker_client",
    "engine_reachable",
    "ensure_cached_image",
    "exclusive_lock",
    "image_exists",
    "progress",
    "run_docker",
]

# Names the docker client to use instead of the first ``docker`` on PATH.
DOCKER_ENV = "REGCRED_DOCKER"
STAMP_NAME = "build-complete.json"
TARBALL_NAME = "image.tar"


class DockerError(RuntimeError):
    """A docker command failed, or no Docker engine is reachable."""


def docker_client() -> str:
    """Return the docker client to run: ``$REGCRED_DOCKER`` or ``docker`` from PATH."""
    configured = os.environ.get(DOCKER_ENV)
    if configured:
        return configured
    found = shutil.which("docker")
    if found is None:
        raise DockerError(f"no docker client on PATH; install Docker or set {DOCKER_ENV}")
    return found


def run_docker(
    args: Sequence[str],
    *,
    log: TextIO | None = None,
    stdin: int | IO[Any] | None = None,
    check: bool = True,
    timeout: float | None = None,
) -> str:
    """Run ``docker ARGS``; return its stdout. stderr goes to `log` or into the error."""
    command = [docker_client(), *args]
    if log is not None:
        log.write(f"$ docker {' '.join(args)}\n")
        log.flush()
    try:
        result = subprocess.run(
            command,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=log if log is not None else subprocess.PIPE,
            text=True,
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as error:
        raise DockerError(f"docker {args[0]} did not finish within {timeout} s") from error
    if check and result.returncode != 0:
        detail = result.stderr.strip() if log is None else f"see {log.name}"
        raise DockerError(
            f"docker {' '.join(args[:2])} failed (exit {result.returncode}): {detail}"
        )
    return result.stdout


def engine_reachable() -> bool:
    """Whether a docker client exists and its engine answers."""
    try:
        run_docker(["version", "--format", "{{.Server.Version}}"], timeout=20)
    except DockerError:
        return False
    return True


def image_exists(tag: str) -> bool:
    """Whether the engine holds an image of this tag."""
    try:
        run_docker(["image", "inspect", "--format", "{{.Id}}", tag])
    except DockerError:
        return False
    return True


def ensure_cached_image(
    tag: str,
    folder: Path,
    build: Callable[[Path, TextIO], None],
    stamp: Mapping[str, object],
) -> str:
    """Return `tag`, present in the engine: found, loaded from the cache, or built.

    The tag must name its inputs (a hash in it), so an image of that tag in the engine
    is the right one. `build(folder, log)` must leave the image `tag` in the engine; it
    is then saved as ``folder/image.tar`` for the next engine that lacks it (a fresh
    machine's engine, or after ``docker image prune``). The stamp is written last.
    """
    if image_exists(tag):
        return tag
    folder.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(folder / ".lock"):
        if image_exists(tag):
            return tag
        tarball = folder / TARBALL_NAME
        if (folder / STAMP_NAME).is_file() and tarball.is_file():
            progress(f"loading {tag} from {tarball}")
            with tarball.open("rb") as stream:
                run_docker(["load", "--quiet"], stdin=stream)
            if image_exists(tag):
                return tag
            raise DockerError(f"{tarball} did not hold {tag}; delete {folder} to rebuild")
        (folder / STAMP_NAME).unlink(missing_ok=True)
        started = time.monotonic()
        with (folder / "build.log").open("w") as log:
            build(folder, log)
            partial = folder / (TARBALL_NAME + ".partial")
            progress(f"saving {tag} to {tarball}")
            run_docker(["save", "--output", str(partial), tag], log=log)
            partial.rename(tarball)
        seconds = round(time.monotonic() - started, 1)
        record = {**stamp, "tag": tag, "buildSeconds": seconds}
        (folder / STAMP_NAME).write_text(json.dumps(record, indent=2) + "\n")
        progress(f"built {tag} in {seconds} s")
    return tag


def progress(message: str) -> None:
    """One progress line on stderr (the full output goes to a build.log)."""
    print(f"regcred: {message}", file=sys.stderr, flush=True)
