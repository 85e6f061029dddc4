"""A real OCI distribution registry on 127.0.0.1 for tests, with TLS and htpasswd auth.

The registry (distribution/distribution) and the crane client (go-containerregistry)
are built from source by `gotools`, verified by the go.sum files under registry/.
``$REGCRED_REGISTRY`` and ``$REGCRED_CRANE`` name binaries to use instead.

`RegistryServer` makes a throw-away CA and serving certificate (the control plane's
`make_pki`, whose serving certificate covers 127.0.0.1 and localhost), an htpasswd
file with one user, and a filesystem storage folder, all in one temporary folder that
is removed when the server stops. Nothing is ever pulled from the internet: images are
pushed from a tarball made here onto crane's empty base image.
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
from pathlib import Path
from types import TracebackType
from typing import Self

import bcrypt
import yaml
from gotools import GoTool

from regcred.controlplane.certs import ControlPlanePki, make_pki
from regcred.controlplane.runner import die_with_parent_hook, free_port

__all__ = ["CRANE", "REGISTRY", "RegistryError", "RegistryServer", "Reply"]

_MODULES = Path(__file__).with_name("registry")

REGISTRY = GoTool(
    name="registry",
    module="github.com/distribution/distribution/v3",
    version="v3.1.2",
    package="github.com/distribution/distribution/v3/cmd/registry",
    sum_file=_MODULES / "registry-module" / "go.sum",
    env_override="REGCRED_REGISTRY",
    # `registry --version` reports "+unknown" without the stamp the release build sets.
    ldflags="-s -w -X github.com/distribution/distribution/v3/version.version=v3.1.2",
)
CRANE = GoTool(
    name="crane",
    module="github.com/google/go-containerregistry",
    version="v0.22.1",
    package="github.com/google/go-containerregistry/cmd/crane",
    sum_file=_MODULES / "crane-module" / "go.sum",
    env_override="REGCRED_CRANE",
    # Built from a wrapper module, crane would report "(devel)" as its version.
    ldflags="-s -w -X github.com/google/go-containerregistry/cmd/crane/cmd.Version=v0.22.1",
)

LOCALHOST = "127.0.0.1"
REALM = "regcred-test-registry"
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
CRANE_TIMEOUT_SECONDS = 120.0
# Go's bcrypt minimum: the registry re-hashes on every authenticated request.
BCRYPT_ROUNDS = 4
# Another process may take the free port between probe and bind; then try a new one.
START_ATTEMPTS = 3


class RegistryError(RuntimeError):
    """The registry did not start, or crane failed."""


@dataclass(frozen=True)
class Reply:
    """An HTTP response from the registry, read completely."""

    status: int
    headers: Message
    body: bytes


class RegistryServer:
    """`registry serve` on 127.0.0.1 with TLS and Basic auth, as a context manager.

    Attributes once started: `address` ("127.0.0.1:PORT"), `ca_file` (PEM of the CA
    that signed the serving certificate), `username` and `password` (the htpasswd user).
    """

    def __init__(self, registry_bin: Path | None = None, crane_bin: Path | None = None) -> None:
        """Prepare, without starting; binaries not given are built (or taken from the cache)."""
        self._registry_bin = registry_bin
        self._crane_bin = crane_bin
        self.username = "regcred-test"
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
        """Write the CA, htpasswd and config, start the registry, wait until it answers."""
        registry_bin = self._registry_bin or REGISTRY.ensure()
        # Built now, so a test never pays for (or times out on) the build.
        self._crane_bin = self._crane_bin or CRANE.ensure()
        self._workdir = Path(tempfile.mkdtemp(prefix="regcred-registry-"))
        try:
            config = self._write_files()
            for _ in range(START_ATTEMPTS):
                self.address = f"{LOCALHOST}:{free_port()}"
                config.write_text(self._config_yaml())
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
        """A client TLS context that trusts the test CA (and nothing else)."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def get(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        """GET `path` over TLS trusting the test CA; anonymous unless `headers` say otherwise.

        http.client directly, so no proxy setting of the environment gets in the way.
        """
        host, port = self.address.rsplit(":", 1)
        connection = http.client.HTTPSConnection(
            host, int(port), context=self.ssl_context(), timeout=5
        )
        try:
            connection.request("GET", path, headers=headers or {})
            response = connection.getresponse()
            return Reply(status=response.status, headers=response.headers, body=response.read())
        finally:
            connection.close()

    def docker_config_json(self, username: str | None = None, password: str | None = None) -> str:
        """A docker config.json (also a `.dockerconfigjson`) for this registry.

        Without arguments it holds the valid htpasswd user.
        """
        user = self.username if username is None else username
        secret = self.password if password is None else password
        auth = base64.b64encode(f"{user}:{secret}".encode()).decode()
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

        crane trusts only the test CA; the result is returned whatever the exit code.
        """
        if docker_config_dir is None:
            docker_config_dir = self.workdir / "anonymous"
            docker_config_dir.mkdir(exist_ok=True)
        env = {
            **os.environ,
            "DOCKER_CONFIG": str(docker_config_dir),
            # Go reads the roots from here on Linux; the test CA replaces the system's.
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
        layer = self.workdir / "layers" / f"{uuid.uuid4().hex}.tar"
        layer.parent.mkdir(exist_ok=True)
        _write_layer(layer, f"{reference}\n".encode())
        credentials = self.write_docker_config(self.workdir / "pusher")
        result = self.crane(
            ["append", "--oci-empty-base", "-f", str(layer), "-t", reference], credentials
        )
        if result.returncode != 0:
            raise RegistryError(f"crane could not push {reference}:\n{result.stderr}")
        return reference

    # -- internals ------------------------------------------------------------------

    def _write_files(self) -> Path:
        """Write the PKI, htpasswd and storage folder; return where config.yml goes."""
        self._pki = make_pki(self.workdir / "pki")
        hashed = bcrypt.hashpw(self.password.encode(), bcrypt.gensalt(rounds=BCRYPT_ROUNDS))
        (self.workdir / "htpasswd").write_text(f"{self.username}:{hashed.decode()}\n")
        (self.workdir / "storage").mkdir()
        return self.workdir / "config.yml"

    def _config_yaml(self) -> str:
        config = {
            "version": "0.1",
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.workdir / "storage")},
                "delete": {"enabled": True},
            },
            "http": {
                "addr": self.address,
                # Set, so the registry does not warn that it made one up.
                "secret": secrets.token_hex(16),
                # make_pki's serving certificate covers 127.0.0.1 and localhost.
                "tls": {
                    "certificate": str(self.pki.serving.cert),
                    "key": str(self.pki.serving.key),
                },
            },
            "auth": {"htpasswd": {"realm": REALM, "path": str(self.workdir / "htpasswd")}},
        }
        return yaml.safe_dump(config)

    def _spawn(self, registry_bin: Path, config: Path) -> None:
        env = {
            **os.environ,
            # Its OpenTelemetry exporter would otherwise try to reach a local collector.
            "OTEL_TRACES_EXPORTER": "none",
        }
        with (self.workdir / "registry.log").open("ab") as log:
            self._process = subprocess.Popen(
                [str(registry_bin), "serve", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=env,
                process_group=0,
                # Do not outlive a test run that is killed before its teardown.
                preexec_fn=die_with_parent_hook(),  # noqa: PLW1509
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


def _write_layer(path: Path, content: bytes) -> None:
    """An uncompressed layer tarball with one file; fixed metadata keeps it reproducible."""
    info = tarfile.TarInfo("regcred-test/image.txt")
    info.size = len(content)
    info.mode = 0o644
    with tarfile.open(path, "w") as archive:
        archive.addfile(info, io.BytesIO(content))

