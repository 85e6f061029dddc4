"""The tests' private registry as a container on a kind cluster's Docker network.

A kind node pulls through its own containerd, so the registry must be reachable from
the node's network, not only from 127.0.0.1 of this machine. `ContainerRegistry` runs
the same pinned `registry` binary as `RegistryServer` (TLS with a throw-away CA,
htpasswd), in a container of its own on the cluster's network, reached by its container
name through Docker's DNS: the node pulls ``NAME:5000/...`` like any registry, and crane
runs inside that container so the host needs no route to it.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from registryserver import RegistryError, RegistryServer

__all__ = ["ContainerRegistry"]

DOCKER = "/usr/bin/docker"
PORT = 5000
# An image with nothing in it: the registry and crane are static binaries, mounted in.
EMPTY_IMAGE = "regcred-test/empty:1"
REGISTRY_IN_CONTAINER = "/usr/local/bin/registry"
CRANE_IN_CONTAINER = "/usr/local/bin/crane"
CRANE_TIMEOUT_SECONDS = 120
START_TIMEOUT_SECONDS = 30.0


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the Docker client; fail with its stderr when `check` and it exits non-zero."""
    result = subprocess.run(
        [DOCKER, *args], capture_output=True, text=True, timeout=300, check=False
    )
    if check and result.returncode != 0:
        raise RegistryError(f"docker {' '.join(args[:2])} failed: {result.stderr.strip()}")
    return result


class ContainerRegistry(RegistryServer):
    """`registry serve` in container `name` on Docker network `network`, at ``name:5000``."""

    def __init__(self, name: str, network: str) -> None:
        super().__init__()
        self.name = name
        self.network = network

    @property
    def running(self) -> bool:
        state = docker("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return state.stdout.strip() == "true"

    def start(self) -> None:
        """Start the container, then wait until the registry challenges for credentials."""
        _ensure_empty_image()
        docker("rm", "--force", self.name, check=False)  # a leftover of a killed run
        super().start()

    def change_password(self) -> str:
        """Give the user a new password, effective at once; return the old one."""
        old, self.password = self.password, secrets.token_urlsafe(18)
        self._write_htpasswd()
        # The registry reads htpasswd when it starts; its storage is on the mounted folder.
        docker("restart", "--time", "2", self.name)
        self._wait_for_container_serving()
        return old

    def crane(
        self, args: Sequence[str], docker_config_dir: Path | None
    ) -> subprocess.CompletedProcess[str]:
        """Run crane inside the registry's container, where its name resolves."""
        if docker_config_dir is None:
            docker_config_dir = self.workdir / "anonymous"
            docker_config_dir.mkdir(exist_ok=True)
        command = [
            DOCKER, "exec",
            "--env", f"DOCKER_CONFIG={docker_config_dir}",
            "--env", f"SSL_CERT_FILE={self.ca_file}",
            self.name, CRANE_IN_CONTAINER, *args,
        ]
        return subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=CRANE_TIMEOUT_SECONDS, check=False,
        )

    def _next_address(self) -> str:
        return f"{self.name}:{PORT}"

    def _extra_serving_names(self) -> tuple[str, ...]:
        return (self.name,)

    def _listen_address(self) -> str:
        # Every address of the container's own network namespace: the cluster network's.
        return f":{PORT}"

    def _spawn(self, registry_bin: Path, config: Path) -> None:
        workdir = str(self.workdir)
        docker(
            "run", "--detach", "--name", self.name, "--network", self.network,
            "--volume", f"{workdir}:{workdir}",
            "--volume", f"{registry_bin}:{REGISTRY_IN_CONTAINER}:ro",
            "--volume", f"{self.crane_bin}:{CRANE_IN_CONTAINER}:ro",
            "--env", "OTEL_TRACES_EXPORTER=none",
            EMPTY_IMAGE, REGISTRY_IN_CONTAINER, "serve", str(config),
        )

    def _wait_until_serving(self) -> bool:
        self._wait_for_container_serving()
        return True

    def _wait_for_container_serving(self) -> None:
        """Anonymous crane gets 401 from a serving registry, a dial error before that."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            answer = self.crane(["catalog", self.address], None)
            if "UNAUTHORIZED" in answer.stderr or "401" in answer.stderr:
                return
            if time.monotonic() > deadline or not self.running:
                raise RegistryError(
                    f"the registry in container {self.name} does not serve: {answer.stderr}\n"
                    + docker("logs", "--tail", "30", self.name, check=False).stderr
                )
            time.sleep(0.5)

    def _stop_process(self) -> None:
        docker("rm", "--force", self.name, check=False)


def _ensure_empty_image() -> None:
    if docker("image", "inspect", EMPTY_IMAGE, check=False).returncode == 0:
        return
    empty_tar = b"\0" * 1024  # an empty tar archive: two zero blocks
    result = subprocess.run(
        [DOCKER, "import", "-", EMPTY_IMAGE], input=empty_tar, capture_output=True, timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise RegistryError(f"docker import failed: {result.stderr.decode(errors='replace')}")
