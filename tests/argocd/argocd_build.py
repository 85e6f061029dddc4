"""The pinned Argo CD and kustomize, built from source once and cached like the control plane.

Argo CD comes through the Go module proxy in a small wrapper module that requires
``github.com/argoproj/argo-cd/v3`` and its gitops-engine at the pinned version, and carries
Argo CD's own ``replace`` block (read from its go.mod, never hard-coded; only the line
pointing gitops-engine at a local folder is left out, since the proxy has that module).
Argo CD's go.mod asks for a newer Go than the installed one, so the build names the
toolchain, which ``go`` fetches from the same proxy. kustomize, which the repo-server runs
for kustomize sources, is built in a second wrapper with the kube-openapi version Argo CD
uses (its own pin fails to resolve through the proxy). Both wrappers' go.sum files are
committed next to this file, so every download is checked against a known hash.

The result goes to ``<regcred cache>/argocd/<pins>/``; a stamp file written last marks a
finished build, and a lock serialises concurrent runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from regcred_dev.controlplane.build import (
    BuildError,
    cache_root,
    download_go_mod,
    exclusive_lock,
    go_build,
    go_environment,
    run_go,
)

__all__ = [
    "ARGOCD_VERSION",
    "GO_TOOLCHAIN",
    "KUSTOMIZE_VERSION",
    "ArgoCDInstall",
    "ensure_argocd",
]

ARGOCD_VERSION = "v3.6.1"
# Argo CD's go.mod says `go 1.27.0`; the newest patch release of that line is pinned.
GO_TOOLCHAIN = "go1.27.4"
KUSTOMIZE_VERSION = "v5.8.3"

ARGOCD_MODULE = "github.com/argoproj/argo-cd/v3"
GITOPS_ENGINE_MODULE = "github.com/argoproj/argo-cd/gitops-engine/v3"
KUSTOMIZE_MODULE = "sigs.k8s.io/kustomize/kustomize/v5"
MODULE_SUMS = Path(__file__).parent / "modules"
STAMP_NAME = "build-complete.json"
# The commands the one Argo CD binary becomes, by the name it is started under.
COMMANDS = ("argocd", "argocd-repo-server", "argocd-application-controller")
# The repo-server runs these from PATH for every Git source, GnuPG verification or not.
WRAPPER_SCRIPTS = ("git-verify-wrapper.sh", "gpg-wrapper.sh")

_REPLACE_BLOCK = re.compile(r"^replace \(\n(.*?)^\)", re.MULTILINE | re.DOTALL)
_REQUIRE_LINE = re.compile(r"^\s*(\S+)\s+(v\S+)", re.MULTILINE)


@dataclass(frozen=True)
class ArgoCDInstall:
    """A finished build: the commands, kustomize and Argo CD's own manifests."""

    folder: Path

    @property
    def bin(self) -> Path:
        """argocd (and its other names), kustomize and the wrapper scripts."""
        return self.folder / "bin"

    @property
    def crds(self) -> Path:
        """Argo CD's CRDs (``manifests/crds`` of the release)."""
        return self.folder / "manifests" / "crds"

    @property
    def config(self) -> Path:
        """Argo CD's config objects (``manifests/base/config`` of the release)."""
        return self.folder / "manifests" / "config"

    def command(self, name: str) -> Path:
        return self.bin / name


def pinned_folder() -> Path:
    """The cache folder for the pins; changing any pin gives a new folder."""
    return (
        cache_root()
        / "argocd"
        / f"argocd-{ARGOCD_VERSION}-{GO_TOOLCHAIN}-kustomize-{KUSTOMIZE_VERSION}"
    )


def ensure_argocd() -> ArgoCDInstall:
    """Return the cached build, building it first (several minutes when cold).

    Raises `BuildError` when Go is missing or the build fails; the full output is in
    ``build.log`` in the cache folder.
    """
    install = ArgoCDInstall(pinned_folder())
    if _complete(install):
        return install
    install.folder.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(install.folder / ".lock"):
        if not _complete(install):  # another run may have finished it while we waited
            _build(install)
    return install


def _complete(install: ArgoCDInstall) -> bool:
    binaries = [*COMMANDS, "kustomize", *WRAPPER_SCRIPTS]
    return (install.folder / STAMP_NAME).is_file() and all(
        os.access(install.bin / name, os.X_OK) for name in binaries
    )


def _build(install: ArgoCDInstall) -> None:
    if shutil.which("go") is None:
        raise BuildError("building Argo CD needs the Go toolchain (go) on PATH")
    folder = install.folder
    (folder / STAMP_NAME).unlink(missing_ok=True)
    shutil.rmtree(install.bin, ignore_errors=True)
    shutil.rmtree(folder / "manifests", ignore_errors=True)
    install.bin.mkdir()
    env = go_environment()
    # Argo CD's go.mod refuses older toolchains; `go` fetches this one from the proxy.
    env["GOTOOLCHAIN"] = GO_TOOLCHAIN
    started = time.monotonic()
    log_path = folder / "build.log"
    with log_path.open("w") as log:
        _progress(f"building Argo CD {ARGOCD_VERSION} into {install.bin} (log: {log_path})")
        module = _wrapper(folder, "argocd", f"require {ARGOCD_MODULE} {ARGOCD_VERSION}\n")
        upstream = download_go_mod(f"{ARGOCD_MODULE}@{ARGOCD_VERSION}", module, env, log)
        source = _module_dir(module, env, log)
        (module / "go.mod").write_text(argocd_wrapper_go_mod(upstream))
        _progress(f"compiling Argo CD with {GO_TOOLCHAIN} (10 min of CPU time when cold) ...")
        stamp = f"-s -w -X {ARGOCD_MODULE}/common.version={ARGOCD_VERSION.removeprefix('v')}"
        go_build(module, str(install.bin / "argocd"), [f"{ARGOCD_MODULE}/cmd"], env, log, stamp)
        for name in COMMANDS[1:]:
            (install.bin / name).symlink_to("argocd")
        for script in WRAPPER_SCRIPTS:
            shutil.copyfile(source / "hack" / script, install.bin / script)
            (install.bin / script).chmod(0o755)
        shutil.copytree(source / "manifests" / "crds", install.crds)
        shutil.copytree(source / "manifests" / "base" / "config", install.config)
        for copied in (install.crds, install.config):
            copied.chmod(0o755)  # module cache files and folders are read-only
            (copied / "kustomization.yaml").unlink(missing_ok=True)
            for path in copied.iterdir():
                path.chmod(0o644)

        _progress(f"building kustomize {KUSTOMIZE_VERSION} ...")
        kustomize = _wrapper(folder, "kustomize", kustomize_requirements(upstream))
        go_build(
            kustomize,
            str(install.bin / "kustomize"),
            [KUSTOMIZE_MODULE],
            env,
            log,
            f"-s -w -X sigs.k8s.io/kustomize/api/provenance.version={KUSTOMIZE_VERSION}",
        )
    seconds = round(time.monotonic() - started, 1)
    record = {
        "argocd": ARGOCD_VERSION,
        "go": GO_TOOLCHAIN,
        "kustomize": KUSTOMIZE_VERSION,
        "buildSeconds": seconds,
    }
    (folder / STAMP_NAME).write_text(json.dumps(record, indent=2) + "\n")
    _progress(f"built Argo CD and kustomize in {seconds} s")


def _wrapper(folder: Path, name: str, requirements: str) -> Path:
    """A wrapper module folder with a go.mod and the committed go.sum for `name`."""
    module = folder / "modules" / name
    module.mkdir(parents=True, exist_ok=True)
    (module / "go.mod").write_text(
        f"module regcred.dev/tests/{name}\n\ngo 1.27.0\n\n{requirements}"
    )
    committed = MODULE_SUMS / name / "go.sum"
    if committed.is_file():
        shutil.copyfile(committed, module / "go.sum")
    else:
        (module / "go.sum").unlink(missing_ok=True)
    return module


def _module_dir(module: Path, env: dict[str, str], log: TextIO) -> Path:
    """The extracted source of the pinned Argo CD module (in the Go module cache)."""
    output = run_go(
        ["mod", "download", "-json", f"{ARGOCD_MODULE}@{ARGOCD_VERSION}"], module, env, log
    )
    return Path(json.loads(output)["Dir"])


def argocd_wrapper_go_mod(upstream_go_mod: str) -> str:
    """The wrapper's go.mod: Argo CD and gitops-engine required, Argo CD's replaces kept.

    A dependency's ``replace`` lines do not apply, so Argo CD builds only with them
    copied into the main module; the one pointing gitops-engine at ``./gitops-engine``
    (a folder of Argo CD's repository, absent from the module zip) is left out, and the
    tagged gitops-engine module is required instead.
    """
    block = _REPLACE_BLOCK.search(upstream_go_mod)
    if block is None:
        raise BuildError(f"found no replace block in {ARGOCD_MODULE}'s go.mod")
    replaces = [
        line for line in block.group(1).splitlines() if "=> ./" not in line and "=> ../" not in line
    ]
    lines = [
        "module regcred.dev/tests/argocd",
        "",
        *_go_directive(upstream_go_mod),
        "",
        "require (",
        f"\t{ARGOCD_MODULE} {ARGOCD_VERSION}",
        f"\t{GITOPS_ENGINE_MODULE} {ARGOCD_VERSION}",
        ")",
        "",
        "replace (",
        *replaces,
        ")",
        "",
    ]
    return "\n".join(lines)


def kustomize_requirements(upstream_go_mod: str) -> str:
    """kustomize at its pin, with the kube-openapi Argo CD's go.mod requires."""
    versions = dict(_REQUIRE_LINE.findall(upstream_go_mod))
    openapi = versions.get("k8s.io/kube-openapi")
    if openapi is None:
        raise BuildError(f"{ARGOCD_MODULE}'s go.mod requires no k8s.io/kube-openapi")
    return (
        f"require {KUSTOMIZE_MODULE} {KUSTOMIZE_VERSION}\n\n"
        f"replace k8s.io/kube-openapi => k8s.io/kube-openapi {openapi}\n"
    )


def _go_directive(go_mod: str) -> list[str]:
    return [line for line in go_mod.splitlines() if line.startswith("go ")]


def _progress(message: str) -> None:
    print(f"regcred: {message}", file=sys.stderr, flush=True)
