"""Debian images made locally with debootstrap, for hosts that cannot pull from a registry.

`ensure_debian_image` turns a `DebianImageRecipe` (suite, packages, a setup script,
optionally the host's CA bundle) into a ``docker import``-ed image whose tag carries a
hash of those inputs, cached as a ``docker save`` tarball under
``cache_root()/images/``. Only the Debian package mirror is contacted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import ssl
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from regcred_dev.controlplane.build import cache_root
from regcred_dev.kind.docker import (
    DockerError,
    docker_client,
    ensure_cached_image,
    progress,
)

__all__ = [
    "DEBIAN_MIRROR_ENV",
    "PYTHON_BASE_RECIPE",
    "DebianImageRecipe",
    "ensure_debian_image",
    "ensure_python_base_image",
    "host_ca_bundle",
]

DEBIAN_MIRROR_ENV = "REGCRED_DEBIAN_MIRROR"
DEFAULT_DEBIAN_MIRROR = "http://deb.debian.org/debian"
# Bump when the way a recipe becomes an image changes, so cached images are remade.
RECIPE_FORMAT = 1
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CA_BUNDLE_IN_IMAGE = "etc/ssl/certs/ca-certificates.crt"
# Where distributions keep the system CA bundle, if Python's OpenSSL names none.
_CA_BUNDLE_CANDIDATES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
)


@dataclass(frozen=True)
class DebianImageRecipe:
    """What goes into a debootstrapped image; its tag is ``NAME:<hash of all of this>``."""

    name: str
    packages: tuple[str, ...]
    suite: str = "bookworm"
    # Shell run by /bin/sh inside the rootfs (chroot) after the packages are installed.
    setup_script: str = ""
    # Copied to /etc/ssl/certs/ca-certificates.crt after the setup script, so that a
    # TLS-intercepting proxy the host trusts is trusted inside too.
    copy_host_ca_bundle: bool = False
    # ``docker import --change`` lines (ENV, CMD, ENTRYPOINT, WORKDIR, ...).
    changes: tuple[str, ...] = field(default=(f"ENV PATH={DEFAULT_PATH}",))

    def fingerprint(self) -> str:
        """Hash of every input that shapes the image (the CA bundle by content)."""
        inputs: dict[str, object] = {
            "format": RECIPE_FORMAT,
            "suite": self.suite,
            "packages": sorted(self.packages),
            "setup": self.setup_script,
            "changes": list(self.changes),
        }
        if self.copy_host_ca_bundle:
            inputs["caBundle"] = hashlib.sha256(host_ca_bundle().read_bytes()).hexdigest()
        encoded = json.dumps(inputs, sort_keys=True).encode()
        return hashlib.sha256(encoded).hexdigest()[:16]

    @property
    def tag(self) -> str:
        return f"{self.name}:{self.fingerprint()}"


PYTHON_BASE_RECIPE = DebianImageRecipe(
    name="regcred-python-base",
    packages=("python3", "python3-pip", "python3-venv", "ca-certificates"),
    setup_script=(
        # What python:3.x-slim users expect: `python` and `pip` commands, and pip
        # allowed to install into the system interpreter (PEP 668 marker removed).
        "ln -sf python3 /usr/bin/python && ln -sf pip3 /usr/bin/pip"
        " && rm -f /usr/lib/python3*/EXTERNALLY-MANAGED"
    ),
    copy_host_ca_bundle=True,
    changes=(f"ENV PATH={DEFAULT_PATH}", "ENV LANG=C.UTF-8", 'CMD ["python3"]'),
)


def ensure_python_base_image() -> str:
    """Return the tag of a local bookworm Python base image (python3, pip, venv, host CAs).

    It stands in for ``python:3.11-slim`` where no registry can be reached: pass it as
    the Dockerfile's ``PYTHON_IMAGE`` build argument.
    """
    return ensure_debian_image(PYTHON_BASE_RECIPE)


def ensure_debian_image(recipe: DebianImageRecipe) -> str:
    """Return the recipe's image tag, building it with debootstrap unless cached.

    Needs root and ``debootstrap`` for a cold build (about a minute, mostly downloads);
    a cached build is a ``docker image inspect`` or a ``docker load``.
    """
    tag = recipe.tag
    folder = cache_root() / "images" / f"{recipe.name}-{recipe.fingerprint()}"

    def build(folder: Path, log: TextIO) -> None:
        _build_debian_image(recipe, tag, folder, log)

    stamp = {"suite": recipe.suite, "packages": sorted(recipe.packages)}
    return ensure_cached_image(tag, folder, build, stamp)


def host_ca_bundle() -> Path:
    """Return the host's system CA bundle file."""
    named = ssl.get_default_verify_paths().openssl_cafile
    for candidate in (named, *_CA_BUNDLE_CANDIDATES):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise DockerError("found no system CA bundle on this host to copy into the image")


def _build_debian_image(recipe: DebianImageRecipe, tag: str, folder: Path, log: TextIO) -> None:
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise DockerError("building a Debian image needs debootstrap (apt-get install debootstrap)")
    if os.geteuid() != 0:
        raise DockerError("debootstrap needs root to build a Debian image")
    rootfs = folder / "rootfs"
    _remove_rootfs(rootfs)
    mirror = os.environ.get(DEBIAN_MIRROR_ENV, DEFAULT_DEBIAN_MIRROR)
    progress(f"debootstrap {recipe.suite} with {len(recipe.packages)} packages for {tag} ...")
    try:
        _run_logged(
            [
                debootstrap,
                "--variant=minbase",
                f"--include={','.join(sorted(recipe.packages))}",
                recipe.suite,
                str(rootfs),
                mirror,
            ],
            log,
        )
        if recipe.setup_script:
            _run_logged(["chroot", str(rootfs), "/bin/sh", "-euc", recipe.setup_script], log)
        if recipe.copy_host_ca_bundle:
            shutil.copyfile(host_ca_bundle(), rootfs / CA_BUNDLE_IN_IMAGE)
        # The package downloads and indexes are not needed at run time.
        for leftovers in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / leftovers).glob("*"):
                if entry.is_file():
                    entry.unlink()
        import_rootfs(rootfs, tag, recipe.changes, log)
    finally:
        _remove_rootfs(rootfs)


def import_rootfs(rootfs: Path, tag: str, changes: tuple[str, ...], log: TextIO) -> None:
    """``docker import`` a root filesystem folder as image `tag`."""
    change_args = [arg for change in changes for arg in ("--change", change)]
    log.write(f"$ tar -C {rootfs} -c . | docker import {' '.join(change_args)} - {tag}\n")
    log.flush()
    with subprocess.Popen(
        ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-c", "."],
        stdout=subprocess.PIPE,
        stderr=log,
    ) as tar:
        imported = subprocess.run(
            [docker_client(), "import", *change_args, "-", tag],
            stdin=tar.stdout,
            stdout=log,
            stderr=log,
            check=False,
        )
    if tar.returncode != 0 or imported.returncode != 0:
        raise DockerError(f"importing {rootfs} as {tag} failed; see {log.name}")


def _run_logged(command: list[str], log: TextIO) -> None:
    log.write(f"$ {' '.join(command)}\n")
    log.flush()
    result = subprocess.run(command, stdout=log, stderr=log, check=False)
    if result.returncode != 0:
        raise DockerError(
            f"{Path(command[0]).name} failed (exit {result.returncode}); see {log.name}"
        )


def _remove_rootfs(rootfs: Path) -> None:
    # debootstrap mounts /proc and /sys inside while it works; an interrupted run may
    # leave them mounted, and rmtree must never descend into the host's /proc.
    for mount in ("proc", "sys", "dev/pts"):
        target = rootfs / mount
        if target.is_mount():
            subprocess.run(["umount", "-l", str(target)], check=False)
    if rootfs.exists():
        shutil.rmtree(rootfs)
