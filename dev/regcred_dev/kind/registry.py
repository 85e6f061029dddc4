"""A private OCI registry (TLS + htpasswd) for demos and tests, never pulled from anywhere.

The registry (distribution/distribution) and the crane client (go-containerregistry)
are pinned `GoTool`s built from source; their go.sum files ship with this package.
``$REGCRED_REGISTRY`` and ``$REGCRED_CRANE`` name binaries to use instead.

`RegistryServer` runs ``registry serve`` on 127.0.0.1: it makes a throw-away CA and
serving certificate (the control plane's `make_pki`), an htpasswd file with one user,
and a storage folder, all in one temporary folder removed when it stops.
`ContainerRegistry` runs the same binary in a container on a kind cluster's Docker
network, reached by its container name: a kind node pulls through its own containerd,
so the registry must be on the node's network; crane then runs inside that container
so this machine needs no route to it. Images are pushed from tarballs made here onto
crane's empty base image.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import secrets
import shutil
import ssl
import subprocess
import tarfile
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import Message
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Self

import yaml

from regcred_dev.controlplane.certs import ControlPlanePki, make_pki
from regcred_dev.controlplane.runner import free_port, spawn_logged
from regcred_dev.kind.docker import DockerError, docker_client, image_exists, run_docker
from regcred_dev.kind.gotools import GoTool

__all__ = [
    "CRANE",
    "REGISTRY",
    "ContainerRegistry",
    "RegistryError",
    "RegistryServer",
    "Reply",
    "basic_authorization",
    "https_get",
]

_SUMS = resources.files(__package__).joinpath("modules")

REGISTRY = GoTool(
    name="registry",
    module="github.com/distribution/distribution/v3",
    version="v3.1.2",
    package="github.com/distribution/distribution/v3/cmd/registry",
    sum_file=_SUMS.joinpath("registry", "go.sum"),
    env_override="REGCRED_REGISTRY",
    # `registry --version` reports "+unknown" without the stamp the release build sets.
    ldflags="-s -w -X github.com/distribution/distribution/v3/version.version=v3.1.2",
)
CRANE = GoTool(
    name="crane",
    module="github.com/google/go-containerregistry",
    version="v0.22.1",
    package="github.com/google/go-containerregistry/cmd/crane",
    sum_file=_SUMS.joinpath("crane", "go.sum"),
    env_override="REGCRED_CRANE",
    # Built from a wrapper module, crane would report "(devel)" as its version.
    ldflags="-s -w -X github.com/google/go-containerregistry/cmd/crane/cmd.Version=v0.22.1",
)

LOCALHOST = "127.0.0.1"
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
CRANE_TIMEOUT_SECONDS = 120.0
# Go's bcrypt minimum: the registry re-hashes on every authenticated request.
BCRYPT_ROUNDS = 4
# Another process may take the free port between probe and bind; then try a new one.
START_ATTEMPTS = 3
IMAGE_NOTE_PATH = "regcred/image.txt"
PROGRAM_PATH = "regcred/program"

CONTAINER_PORT = 5000
# An image with nothing in it: the registry and crane are static binaries, mounted in.
EMPTY_IMAGE = "regcred/empty:1"
REGISTRY_IN_CONTAINER = "/usr/local/bin/registry"
CRANE_IN_CONTAINER = "/usr/local/bin/crane"


class RegistryError(RuntimeError):
    """The registry did not start, or crane failed."""


@dataclass(frozen=True)
class Reply:
    """An HTTP response from the registry, read completely."""

    status: int
    headers: Message
    body: bytes


def https_get(
    address: str, path: str, context: ssl.SSLContext, headers: dict[str, str] | None = None
) -> Reply:
    """GET `path` from ``address`` ("host:port") over TLS with `context`; read it all.

    http.client directly, so no proxy setting of the environment gets in the way.
    """
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=5)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return Reply(status=response.status, headers=response.headers, body=response.read())
    finally:
        connection.close()


def basic_authorization(username: str, password: str) -> str:
    """The value of an ``Authorization`` header for HTTP Basic."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


class RegistryServer:
    """`registry serve` on 127.0.0.1 with TLS and Basic auth, as a context manager.

    Attributes once started: `address` ("127.0.0.1:PORT"), `ca_file` (PEM of the CA
    that signed the serving certificate), `username` and `password` (the htpasswd user).
    """

    realm = "regcred-registry"

    def __init__(
        self,
        registry_bin: Path | None = None,
        crane_bin: Path | None = None,
        username: str = "regcred",
    ) -> None:
        """Prepare, without starting; binaries not given are built (or taken from the cache)."""
        self._registry_bin = registry_bin
        self._crane_bin = crane_bin
        self.username = username
        self.password = secrets.token_urlsafe(18)
        self.address = ""
        self._workdir: Path | None = None
        self._pki: ControlPlanePki | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            raise RegistryError("the registry has not been started")
        return self._workdir

    @property
    def pki(self) -> ControlPlanePki:
        if self._pki is None:
            raise RegistryError("the registry has not been started")
        return self._pki

    @property
    def ca_file(self) -> Path:
        return self.pki.ca_cert

    @property
    def url(self) -> str:
        return f"https://{self.address}"

    @property
    def crane_bin(self) -> Path:
        if self._crane_bin is None:
            raise RegistryError("the registry has not been started")
        return self._crane_bin

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        """Write the CA, htpasswd and config, start the registry, wait until it answers.

        Building a missing binary raises `regcred_dev.controlplane.BuildError`.
        """
        registry_bin = self._registry_bin or REGISTRY.ensure()
        # Built now, so a caller never pays for (or times out on) the build later.
        self._crane_bin = self._crane_bin or CRANE.ensure()
        self._workdir = Path(tempfile.mkdtemp(prefix="regcred-registry-"))
        try:
            config = self._write_files()
            auth = self._auth_config()
            for _ in range(START_ATTEMPTS):
                self.address = self._next_address()
                config.write_text(self._config_yaml(auth))
                self._spawn(registry_bin, config)
                if self._wait_until_serving():
                    return
            raise RegistryError(
                f"the registry exited instead of serving on {self.address}:\n{self._log_tail()}"
            )
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the registry process (by its pid) and delete the temporary folder."""
        self._stop_process()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
            self._pki = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- clients --------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context that trusts the registry's CA (and nothing else)."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def get(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        """GET `path` over TLS trusting the registry's CA; anonymous unless `headers` say otherwise."""
        return https_get(self.address, path, self.ssl_context(), headers)

    def docker_config_json(self, username: str | None = None, password: str | None = None) -> str:
        """A docker config.json (also a `.dockerconfigjson`) for this registry.

        Without arguments it holds the valid htpasswd user.
        """
        user = self.username if username is None else username
        secret = self.password if password is None else password
        auth = basic_authorization(user, secret).removeprefix("Basic ")
        entry = {"username": user, "password": secret, "auth": auth}
        return json.dumps({"auths": {self.address: entry}})

    def write_docker_config(
        self, folder: Path, username: str | None = None, password: str | None = None
    ) -> Path:
        """Write `folder`/config.json (see `docker_config_json`); return `folder`."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(self.docker_config_json(username, password))
        return folder

    def crane(
        self, args: Sequence[str], docker_config_dir: Path | None
    ) -> subprocess.CompletedProcess[str]:
        """Run crane with credentials from `docker_config_dir` (None: anonymous).

        crane trusts only the registry's CA; the result is returned whatever the exit code.
        """
        env = {
            **os.environ,
            "DOCKER_CONFIG": str(self._docker_config_dir(docker_config_dir)),
            # Go reads the roots from here on Linux; the registry's CA replaces the system's.
            "SSL_CERT_FILE": str(self.ca_file),
        }
        return subprocess.run(
            [str(self.crane_bin), *args],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CRANE_TIMEOUT_SECONDS,
            check=False,
        )

    def push_image(self, repository: str, tag: str) -> str:
        """Push a one-layer image as the valid user; return ``address/repository:tag``.

        The layer holds one small file naming the image, so each image has its own digest.
        """
        reference = f"{self.address}/{repository}:{tag}"
        self._push_layer(reference, IMAGE_NOTE_PATH, f"{reference}\n".encode(), mode=0o644)
        return reference

    def push_program(self, repository: str, tag: str, program: Path) -> str:
        """Push an image that runs `program` (a static executable); return its reference."""
        reference = f"{self.address}/{repository}:{tag}"
        self._push_layer(reference, PROGRAM_PATH, program.read_bytes(), mode=0o755)
        entrypoint = "/" + PROGRAM_PATH
        self._crane_as_pusher(["mutate", "--entrypoint", entrypoint, "-t", reference, reference])
        return reference

    def _docker_config_dir(self, folder: Path | None) -> Path:
        """`folder`, or an empty one for an anonymous client."""
        if folder is None:
            folder = self.workdir / "anonymous"
            folder.mkdir(exist_ok=True)
        return folder

    def _push_layer(self, reference: str, path_in_image: str, content: bytes, mode: int) -> None:
        layer = self.workdir / "layers" / f"{uuid.uuid4().hex}.tar"
        layer.parent.mkdir(exist_ok=True)
        _write_layer(layer, path_in_image, content, mode)
        self._crane_as_pusher(["append", "--oci-empty-base", "-f", str(layer), "-t", reference])

    def _crane_as_pusher(self, args: list[str]) -> None:
        result = self.crane(args, self.write_docker_config(self.workdir / "pusher"))
        if result.returncode != 0:
            raise RegistryError(f"crane {args[0]} failed:\n{result.stderr}")

    # -- internals ------------------------------------------------------------------

    def _write_files(self) -> Path:
        """Write the PKI and storage folder; return where config.yml goes."""
        self._pki = make_pki(self.workdir / "pki", self._extra_serving_names())
        (self.workdir / "storage").mkdir()
        return self.workdir / "config.yml"

    def _next_address(self) -> str:
        """The address to try serving on next ("host:port")."""
        return f"{LOCALHOST}:{free_port()}"

    def _extra_serving_names(self) -> tuple[str, ...]:
        """DNS names the serving certificate covers besides localhost and 127.0.0.1."""
        return ()

    def _listen_address(self) -> str:
        """The registry's ``http.addr``: where clients reach it, on this machine."""
        return self.address

    def _auth_config(self) -> dict[str, object]:
        """Prepare what the auth needs and return the config's ``auth`` section: htpasswd."""
        self._write_htpasswd()
        return {"htpasswd": {"realm": self.realm, "path": str(self.workdir / "htpasswd")}}

    def _write_htpasswd(self) -> None:
        # The registry accepts bcrypt hashes only; bcrypt is a dev/test extra, not a
        # dependency of the operator, so it is imported only when a registry starts.
        try:
            import bcrypt
        except ImportError as error:
            raise RegistryError(
                "the private registry's htpasswd needs bcrypt: "
                "pip install 'regcred-operator[test]' (make .venv/.installed does)"
            ) from error
        hashed = bcrypt.hashpw(self.password.encode(), bcrypt.gensalt(rounds=BCRYPT_ROUNDS))
        (self.workdir / "htpasswd").write_text(f"{self.username}:{hashed.decode()}\n")

    def _config_yaml(self, auth: dict[str, object]) -> str:
        config = {
            "version": "0.1",
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.workdir / "storage")},
                "delete": {"enabled": True},
            },
            "http": {
                "addr": self._listen_address(),
                # Set, so the registry does not warn that it made one up.
                "secret": secrets.token_hex(16),
                # make_pki's serving certificate covers 127.0.0.1 and localhost.
                "tls": {
                    "certificate": str(self.pki.serving.cert),
                    "key": str(self.pki.serving.key),
                },
            },
            "auth": auth,
        }
        return yaml.safe_dump(config)

    def _spawn(self, registry_bin: Path, config: Path) -> None:
        env = {
            **os.environ,
            # Its OpenTelemetry exporter would otherwise try to reach a local collector.
            "OTEL_TRACES_EXPORTER": "none",
        }
        self._process = spawn_logged(
            [str(registry_bin), "serve", str(config)], self.workdir / "registry.log", self.workdir, env
        )

    def _wait_until_serving(self) -> bool:
        """True once GET /v2/ answers 401 (auth is on); False if the process exited first."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while self.running:
            try:
                if self.get("/v2/").status == 401:
                    return True
            except (OSError, http.client.HTTPException):
                pass
            if time.monotonic() > deadline:
                raise RegistryError(
                    f"the registry did not answer on {self.address} within "
                    f"{START_TIMEOUT_SECONDS:.0f} s:\n{self._log_tail()}"
                )
            time.sleep(0.1)
        return False

    def _stop_process(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = (self.workdir / "registry.log").read_text(errors="replace")
        except (FileNotFoundError, RegistryError):
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


class ContainerRegistry(RegistryServer):
    """`registry serve` in container `name` on Docker network `network`, at ``name:5000``.

    The node pulls ``NAME:5000/...`` like any registry, through Docker's DNS; make it
    trust `ca_file` with `regcred_dev.kind.cluster.trust_registry`.
    """

    def __init__(
        self,
        name: str,
        network: str,
        registry_bin: Path | None = None,
        crane_bin: Path | None = None,
        username: str = "regcred",
    ) -> None:
        super().__init__(registry_bin, crane_bin, username)
        self.name = name
        self.network = network

    @property
    def running(self) -> bool:
        state = run_docker(
            ["inspect", "--format", "{{.State.Running}}", self.name], check=False
        )
        return state.strip() == "true"

    def start(self) -> None:
        """Start the container, then wait until the registry challenges for credentials."""
        try:
            _ensure_empty_image()
            run_docker(["rm", "--force", self.name], check=False)  # a leftover of a killed run
            super().start()
        except DockerError as error:
            raise RegistryError(f"the registry container {self.name} did not start: {error}") from error

    def change_password(self) -> str:
        """Give the user a new password, effective at once; return the old one."""
        old, self.password = self.password, secrets.token_urlsafe(18)
        self._write_htpasswd()
        # The registry reads htpasswd when it starts; its storage is on the mounted folder.
        run_docker(["restart", "--time", "2", self.name])
        self._wait_for_container_serving()
        return old

    def crane(
        self, args: Sequence[str], docker_config_dir: Path | None
    ) -> subprocess.CompletedProcess[str]:
        """Run crane inside the registry's container, where its name resolves."""
        command = [
            docker_client(), "exec",
            "--env", f"DOCKER_CONFIG={self._docker_config_dir(docker_config_dir)}",
            "--env", f"SSL_CERT_FILE={self.ca_file}",
            self.name, CRANE_IN_CONTAINER, *args,
        ]
        return subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=CRANE_TIMEOUT_SECONDS, check=False,
        )

    def _next_address(self) -> str:
        return f"{self.name}:{CONTAINER_PORT}"

    def _extra_serving_names(self) -> tuple[str, ...]:
        return (self.name,)

    def _listen_address(self) -> str:
        # Every address of the container's own network namespace: the cluster network's.
        return f":{CONTAINER_PORT}"

    def _spawn(self, registry_bin: Path, config: Path) -> None:
        workdir = str(self.workdir)
        run_docker([
            "run", "--detach", "--name", self.name, "--network", self.network,
            "--volume", f"{workdir}:{workdir}",
            "--volume", f"{registry_bin}:{REGISTRY_IN_CONTAINER}:ro",
            "--volume", f"{self.crane_bin}:{CRANE_IN_CONTAINER}:ro",
            "--env", "OTEL_TRACES_EXPORTER=none",
            EMPTY_IMAGE, REGISTRY_IN_CONTAINER, "serve", str(config),
        ])

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
                    + self._log_tail()
                )
            time.sleep(0.5)

    def _stop_process(self) -> None:
        run_docker(["rm", "--force", self.name], check=False)

    def _log_tail(self, lines: int = 30) -> str:
        # The registry logs to stderr, which `docker logs` passes through as stderr.
        result = subprocess.run(
            [docker_client(), "logs", "--tail", str(lines), self.name],
            capture_output=True, text=True, timeout=60, check=False,
        )
        return result.stdout + result.stderr


def _ensure_empty_image() -> None:
    if image_exists(EMPTY_IMAGE):
        return
    empty_tar = b"\0" * 1024  # an empty tar archive: two zero blocks
    result = subprocess.run(
        [docker_client(), "import", "-", EMPTY_IMAGE], input=empty_tar, capture_output=True,
        timeout=60, check=False,
    )
    if result.returncode != 0:
        raise RegistryError(f"docker import failed: {result.stderr.decode(errors='replace')}")


def _write_layer(path: Path, path_in_image: str, content: bytes, mode: int) -> None:
    """An uncompressed layer tarball with one file; fixed metadata keeps it reproducible."""
    info = tarfile.TarInfo(path_in_image)
    info.size = len(content)
    info.mode = mode
    with tarfile.open(path, "w") as archive:
        archive.addfile(info, io.BytesIO(content))
