"""`make release`: the image, the chart, the Python distribution, an SBOM and signatures.

One run makes, for version X.Y.Z of a checkout whose every version place says X.Y.Z
(`regcred_dev.release.versions`):

- the wheel and sdist (``python -m build``), checked by ``twine check --strict``;
- the operator's image (the Dockerfile, BuildKit; ``PYTHON_IMAGE`` as given), pushed as
  ``REGISTRY/regcred-operator:X.Y.Z`` with crane;
- an SPDX SBOM of the pushed image (syft), attached to it as a signed attestation;
- the Helm chart packaged with version and appVersion X.Y.Z, its default
  ``image.repository`` pointing at the image just pushed, pushed with ``helm push`` to
  ``oci://REGISTRY/charts``;
- cosign signatures of the image and the chart in the registry (a caller's key, or
  keyless where the pipeline has an OIDC identity), and a signature bundle of the
  chart's ``.tgz``;
- ``release.json`` (references, digests, sizes) and ``SHA256SUMS`` beside the files.

Without a registry the same steps run against a registry started on 127.0.0.1 for the
run (the project's test registry), and the signed image and chart are then saved from
it into the output folder as OCI layouts (``cosign save``), so the folder holds every
artifact and ``cosign load`` can publish them later with their signatures.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from regcred_dev.kind.docker import progress
from regcred_dev.kind.operator_image import buildkit_client
from regcred_dev.kind.registry import RegistryServer
from regcred_dev.release.tools import COSIGN, CRANE, HELM, REGISTRY, SYFT
from regcred_dev.release.versions import ReleaseError, check_release_version

__all__ = [
    "CHART_NAME",
    "IMAGE_NAME",
    "Endpoint",
    "ReleaseRecord",
    "ReleaseSettings",
    "build_python_distributions",
    "cosign_verify_command",
    "make_release",
    "verify_commands",
]

IMAGE_NAME = "regcred-operator"
CHART_NAME = "regcred-operator"
CHART_FOLDER = Path("deploy/chart")
# The chart's default image repository, replaced in the packaged copy by the pushed one.
DEFAULT_REPOSITORY_LINE = "  repository: ghcr.io/regcred/regcred-operator\n"
TOOL_TIMEOUT_SECONDS = 1800
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Endpoint:
    """Where a release pushes: ``host[:port]/path``, with credentials and an optional CA.

    `docker_config` is a folder holding a docker ``config.json`` (what ``docker login``
    writes); every tool reads its credentials from there.
    """

    registry: str
    docker_config: Path
    ca_file: Path | None = None

    @property
    def image_repository(self) -> str:
        return f"{self.registry}/{IMAGE_NAME}"

    @property
    def chart_repository(self) -> str:
        return f"{self.registry}/charts"

    def env(self) -> dict[str, str]:
        """The environment for crane, cosign and syft to reach the registry."""
        env = {**os.environ, "DOCKER_CONFIG": str(self.docker_config)}
        if self.ca_file is not None:
            # Go reads its roots from here; the registry's CA replaces the system's.
            env["SSL_CERT_FILE"] = str(self.ca_file)
        return env


@dataclass(frozen=True)
class ReleaseSettings:
    """What `make release` was asked for (see the Makefile's release target)."""

    version: str
    source: Path
    output: Path
    # None: a registry on 127.0.0.1 for this run only, artifacts saved into `output`.
    endpoint: Endpoint | None = None
    # A cosign private key (its password in $COSIGN_PASSWORD), or keyless signing.
    cosign_key: Path | None = None
    keyless: bool = False
    # The Dockerfile's PYTHON_IMAGE build argument; None keeps its default.
    python_image: str | None = None
    # Empty: the engine's own platform with BuildKit; else buildx for these platforms.
    platforms: tuple[str, ...] = ()


@dataclass
class ReleaseRecord:
    """What a release made; written as release.json."""

    version: str
    registry: str | None
    signing: str
    revision: str
    image: dict[str, str] = field(default_factory=dict)
    chart: dict[str, str] = field(default_factory=dict)
    files: dict[str, dict[str, object]] = field(default_factory=dict)

    def write(self, folder: Path) -> Path:
        path = folder / "release.json"
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path


def make_release(settings: ReleaseSettings) -> ReleaseRecord:
    """Run every step; return the record (also written to the output folder)."""
    if settings.cosign_key is None and not settings.keyless:
        raise ReleaseError(
            "signing needs a key: COSIGN_KEY=path/to/cosign.key (cosign generate-key-pair; "
            "its password in COSIGN_PASSWORD), or KEYLESS=true where an OIDC identity exists"
        )
    check_release_version(settings.version, settings.source)
    output = settings.output.resolve()
    if output.exists() and any(output.iterdir()):
        # Only a folder a release made is replaced: never a folder given by mistake.
        if not (output / "release.json").is_file():
            raise ReleaseError(f"{output} is not empty and holds no release.json; give an empty folder")
        shutil.rmtree(output)
    output.mkdir(parents=True, exist_ok=True)
    record = ReleaseRecord(
        version=settings.version,
        registry=settings.endpoint.registry if settings.endpoint else None,
        signing="keyless" if settings.keyless else "key",
        revision=_revision(settings.source),
    )
    with tempfile.TemporaryDirectory(prefix="regcred-release-") as work_name:
        work = Path(work_name)
        for path in build_python_distributions(settings.source, output):
            record.files[path.name] = _file_entry(path)
        with _endpoint(settings.endpoint, work) as endpoint:
            _release_to(settings, endpoint, work, output, record)
    for path in sorted(output.iterdir()):
        if path.is_file() and path.name not in record.files:
            record.files[path.name] = _file_entry(path)
    _write_checksums(output, record)
    record.write(output)
    progress(f"release {settings.version} is in {output}")
    return record


def build_python_distributions(source: Path, output: Path) -> list[Path]:
    """Build the wheel and sdist of `source` into `output`; ``twine check --strict`` them."""
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="regcred-dist-") as folder:
        progress("building the wheel and sdist ...")
        _run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", folder, str(source)])
        built = sorted(Path(folder).iterdir())
        if sorted(path.suffix for path in built) != [".gz", ".whl"]:
            raise ReleaseError(f"python -m build made {[path.name for path in built]}")
        _run([sys.executable, "-m", "twine", "check", "--strict", *map(str, built)])
        moved = [Path(shutil.move(str(path), output / path.name)) for path in built]
    return moved


def cosign_verify_command(reference: str, public_key: Path) -> list[str]:
    """The cosign command that verifies `reference`'s signature with `public_key`.

    The signatures were made without a transparency log (offline), so verification
    checks the key alone.
    """
    return [
        str(COSIGN.ensure()), "verify", "--key", str(public_key),
        "--insecure-ignore-tlog=true", reference,
    ]


def verify_commands(record: ReleaseRecord) -> list[str]:
    """Shell commands (run in the output folder) that check what `record` describes."""
    commands = ["sha256sum --check SHA256SUMS"]
    chart = f"{CHART_NAME}-{record.version}.tgz"
    if record.signing == "keyless":
        identity = ("--certificate-identity-regexp '^https://github.com/regcred/regcred-operator/' "
                    "--certificate-oidc-issuer https://token.actions.githubusercontent.com")
        commands.append(f"cosign verify-blob {identity} --bundle {chart}.sigstore.json {chart}")
        commands += [f"cosign verify {identity} {record.image['reference']}",
                     f"cosign verify {identity} {record.chart['reference']}"]
        return commands
    key = "--key cosign.pub"
    commands.append(f"cosign verify-blob {key} --insecure-ignore-tlog=true "
                    f"--bundle {chart}.sigstore.json {chart}")
    if record.registry is None:
        for name in ("image", "chart"):
            layout = f"{IMAGE_NAME}-{record.version}.{name}.oci"
            commands.append(f"tar -xf {layout}.tar && cosign verify {key} "
                            f"--insecure-ignore-tlog=true --local-image {layout}")
    else:
        commands += [f"cosign verify {key} --insecure-ignore-tlog=true {record.image['reference']}",
                     f"cosign verify {key} --insecure-ignore-tlog=true {record.chart['reference']}"]
    return commands


# -- the steps ----------------------------------------------------------------------


def _release_to(
    settings: ReleaseSettings, endpoint: Endpoint, work: Path, output: Path, record: ReleaseRecord
) -> None:
    image_reference = _build_and_push_image(settings, endpoint, work)
    record.image = {"reference": image_reference, "digest": _digest_of(image_reference)}
    for platform, digest_reference in _platform_manifests(endpoint, image_reference, settings.platforms):
        suffix = f"-{platform.replace('/', '-')}" if platform else ""
        sbom = output / f"{IMAGE_NAME}-{settings.version}{suffix}.spdx.json"
        _sbom(endpoint, digest_reference, platform, sbom)
        _cosign(settings, endpoint, ["attest", "--type", "spdxjson", "--predicate", str(sbom), digest_reference])

    chart_package = _package_chart(settings, endpoint, work, output)
    chart_reference = _push_chart(endpoint, chart_package)
    record.chart = {"reference": chart_reference, "digest": _digest_of(chart_reference)}

    for reference in (image_reference, chart_reference):
        _cosign(settings, endpoint, ["sign", reference])
    bundle = chart_package.with_name(chart_package.name + ".sigstore.json")
    _cosign(settings, endpoint, ["sign-blob", "--bundle", str(bundle), str(chart_package)])
    if settings.cosign_key is not None:
        public_key = output / "cosign.pub"
        public_key.write_text(
            _run([str(COSIGN.ensure()), "public-key", "--key", str(settings.cosign_key)])
        )
        for reference in (image_reference, chart_reference):
            _run(cosign_verify_command(reference, public_key), env=endpoint.env())
    if settings.endpoint is None:
        # The registry goes away with this run: keep the signed artifacts as OCI layouts.
        for name, reference in (("image", image_reference), ("chart", chart_reference)):
            folder = output / f"{IMAGE_NAME}-{settings.version}.{name}.oci"
            _run([str(COSIGN.ensure()), "save", "--dir", str(folder), reference], env=endpoint.env())
            _tar_folder(folder)


def _build_and_push_image(settings: ReleaseSettings, endpoint: Endpoint, work: Path) -> str:
    """Build the image and push it; return ``repository@sha256:...``."""
    tag = f"{endpoint.image_repository}:{settings.version}"
    build_args = ["--build-arg", f"VERSION={settings.version}",
                  "--build-arg", f"REVISION={_revision(settings.source)}"]
    if settings.python_image:
        build_args += ["--build-arg", f"PYTHON_IMAGE={settings.python_image}"]
    client = buildkit_client()
    if settings.platforms:
        layout = work / "image-oci"
        progress(f"building {tag} for {', '.join(settings.platforms)} with buildx ...")
        _run([client, "buildx", "build", "--platform", ",".join(settings.platforms), *build_args,
              "--output", f"type=oci,dest={layout},tar=false", str(settings.source)],
             timeout=TOOL_TIMEOUT_SECONDS * 2)
        push = [str(CRANE.ensure()), "push", "--index", str(layout), tag]
    else:
        progress(f"building {tag} with BuildKit ...")
        _run([client, "build", "--quiet", *build_args, "--tag", tag, str(settings.source)],
             env={**os.environ, "DOCKER_BUILDKIT": "1"}, timeout=TOOL_TIMEOUT_SECONDS)
        tarball = work / "image.tar"
        _run([client, "save", "--output", str(tarball), tag])
        # The registry holds it now; the tag would only pile up in the engine (each run
        # to a temporary registry has another address). The layers stay in the build cache.
        _run([client, "image", "rm", tag])
        push = [str(CRANE.ensure()), "push", str(tarball), tag]
    progress(f"pushing {tag} ...")
    pushed = _run(push, env=endpoint.env()).strip().splitlines()[-1]
    return f"{endpoint.image_repository}@{_digest_of(pushed)}"


def _platform_manifests(
    endpoint: Endpoint, reference: str, platforms: Sequence[str]
) -> list[tuple[str, str]]:
    """(platform, digest reference) of each image to describe; ("", reference) for one."""
    if not platforms:
        return [("", reference)]
    found = []
    for platform in platforms:
        digest = _run([str(CRANE.ensure()), "digest", "--platform", platform, reference],
                      env=endpoint.env()).strip()
        found.append((platform, f"{endpoint.image_repository}@{digest}"))
    return found


def _sbom(endpoint: Endpoint, reference: str, platform: str, output: Path) -> None:
    progress(f"SBOM of {reference} -> {output.name}")
    command = [str(SYFT.ensure()), "scan", f"registry:{reference}", "--quiet",
               "--output", f"spdx-json={output}"]
    if platform:
        command += ["--platform", platform]
    # syft would otherwise check for its own updates over the network.
    _run(command, env={**endpoint.env(), "SYFT_CHECK_FOR_APP_UPDATE": "false"})


def _package_chart(settings: ReleaseSettings, endpoint: Endpoint, work: Path, output: Path) -> Path:
    """`helm package` a copy of the chart whose default image is the one pushed."""
    chart = work / "chart" / CHART_NAME
    shutil.copytree(settings.source / CHART_FOLDER, chart)
    values = chart / "values.yaml"
    text = values.read_text()
    if text.count(DEFAULT_REPOSITORY_LINE) != 1:
        raise ReleaseError(f"{CHART_FOLDER}/values.yaml lost its line {DEFAULT_REPOSITORY_LINE!r}")
    if settings.endpoint is not None:
        values.write_text(
            text.replace(DEFAULT_REPOSITORY_LINE, f"  repository: {endpoint.image_repository}\n")
        )
    _run([str(HELM.ensure()), "package", str(chart), "--version", settings.version,
          "--app-version", settings.version, "--destination", str(output)])
    package = output / f"{CHART_NAME}-{settings.version}.tgz"
    if not package.is_file():
        raise ReleaseError(f"helm package did not write {package.name}")
    return package


def _push_chart(endpoint: Endpoint, package: Path) -> str:
    """`helm push` to ``oci://REGISTRY/charts``; return ``.../charts/NAME@sha256:...``."""
    progress(f"pushing {package.name} to oci://{endpoint.chart_repository} ...")
    command = [str(HELM.ensure()), "push", str(package), f"oci://{endpoint.chart_repository}",
               "--registry-config", str(endpoint.docker_config / "config.json")]
    if endpoint.ca_file is not None:
        command += ["--ca-file", str(endpoint.ca_file)]
    pushed = _run(command, env=endpoint.env(), both_streams=True)
    return f"{endpoint.chart_repository}/{CHART_NAME}@{_digest_of(pushed)}"


def _cosign(settings: ReleaseSettings, endpoint: Endpoint, args: list[str]) -> None:
    """Run a cosign signing command with the caller's key, or keyless."""
    command, target = [str(COSIGN.ensure()), args[0], "--yes"], args[1:]
    if settings.cosign_key is not None:
        # Offline signing: no transparency log, no signing config fetched from the network.
        command += ["--key", str(settings.cosign_key), "--tlog-upload=false",
                    "--use-signing-config=false"]
    progress(f"cosign {args[0]} {target[-1]}")
    _run([*command, *target], env=endpoint.env())


@contextlib.contextmanager
def _endpoint(given: Endpoint | None, work: Path) -> Iterator[Endpoint]:
    """The caller's registry, or one on 127.0.0.1 for the duration of the block."""
    if given is not None:
        yield given
        return
    with RegistryServer(REGISTRY.ensure(), CRANE.ensure()) as server:
        config = server.write_docker_config(work / "docker-config")
        yield Endpoint(f"{server.address}/regcred", config, server.ca_file)


# -- helpers --------------------------------------------------------------------------


def _run(
    command: Sequence[str],
    env: Mapping[str, str] | None = None,
    timeout: float = TOOL_TIMEOUT_SECONDS,
    both_streams: bool = False,
) -> str:
    """Run `command`; return its stdout (and stderr with `both_streams`), or raise."""
    try:
        result = subprocess.run(
            list(command), env=dict(env) if env is not None else None, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired:
        raise ReleaseError(f"{Path(command[0]).name} did not finish within {timeout:.0f} s") from None
    if result.returncode != 0:
        shown = " ".join(Path(command[0]).name if i == 0 else word for i, word in enumerate(command))
        raise ReleaseError(f"{shown} failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout + (result.stderr if both_streams else "")


def _digest_of(text: str) -> str:
    found = _DIGEST.findall(text)
    if not found:
        raise ReleaseError(f"no sha256 digest in: {text[-500:]}")
    return found[-1]


def _revision(source: Path) -> str:
    """The commit the release is made from, "+dirty" when files differ from it."""
    def git(*args: str) -> str:
        result = subprocess.run(["git", "-C", str(source), *args], capture_output=True,
                                text=True, check=False)
        return result.stdout.strip() if result.returncode == 0 else ""

    commit = git("rev-parse", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain") else "")


def _tar_folder(folder: Path) -> Path:
    """Replace `folder` by ``folder.tar`` (one file to hand on, ``tar -xf`` to use)."""
    archive = folder.with_name(folder.name + ".tar")
    _run(["tar", "--sort=name", "--owner=0", "--group=0", "--numeric-owner", "-C",
          str(folder.parent), "-cf", str(archive), folder.name])
    shutil.rmtree(folder)
    return archive


def _file_entry(path: Path) -> dict[str, object]:
    return {"size": path.stat().st_size, "sha256": _sha256(path)}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_checksums(output: Path, record: ReleaseRecord) -> None:
    lines = [f"{entry['sha256']}  {name}\n" for name, entry in sorted(record.files.items())]
    (output / "SHA256SUMS").write_text("".join(lines))

