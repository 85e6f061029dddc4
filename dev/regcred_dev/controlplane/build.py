"""Build etcd, kube-apiserver, kube-controller-manager and kubectl from source, once.

The binaries come from the Go module proxy through two small wrapper modules whose
``go.sum`` files ship with this package, so every download is checked against a
committed hash. The result lands in a cache folder named after the pins; a stamp file
written last marks a finished build, so an interrupted build is simply redone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import TextIO

__all__ = [
    "BINARIES",
    "ETCD_VERSION",
    "KUBERNETES_VERSION",
    "BuildError",
    "build_kubernetes_commands",
    "cache_root",
    "download_go_mod",
    "ensure_binaries",
    "exclusive_lock",
    "find_binaries",
    "go_build",
    "go_environment",
    "kubernetes_ldflags",
    "pinned_folder",
    "prepare_module",
    "run_go",
]

KUBERNETES_VERSION = "v1.37.2"
ETCD_VERSION = "v3.6.16"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")

KUBERNETES_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kubectl")
ETCD_PACKAGE = "go.etcd.io/etcd/server/v3"
KUBERNETES_WRAPPER = "regcred.dev/controlplane/kubernetes"
ETCD_WRAPPER = "regcred.dev/controlplane/etcd"
STAMP_NAME = "build-complete.json"

# A staging module is replaced in k8s.io/kubernetes's own go.mod by a local folder;
# outside that repository it must point at the published copy instead.
_STAGING_REPLACE = re.compile(r"^\s*(k8s\.io/[A-Za-z0-9._-]+)\s*=>\s*\./staging/", re.MULTILINE)


class BuildError(RuntimeError):
    """The control-plane binaries could not be found or built."""


def cache_root() -> Path:
    """Return the regcred cache folder: ``$REGCRED_CACHE_DIR`` or ``~/.cache/regcred``."""
    configured = os.environ.get("REGCRED_CACHE_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "regcred"


def pinned_folder() -> Path:
    """Return the cache folder for the pinned versions; a pin change gives a new folder."""
    return cache_root() / "controlplane" / f"k8s-{KUBERNETES_VERSION}-etcd-{ETCD_VERSION}"


def find_binaries() -> Path | None:
    """Return a folder holding all four binaries without building, or None.

    ``$REGCRED_CONTROL_PLANE_BIN`` wins when set; it is an error for it to be incomplete.
    """
    configured = os.environ.get("REGCRED_CONTROL_PLANE_BIN")
    if configured:
        folder = Path(configured).expanduser().resolve()
        missing = _missing_binaries(folder)
        if missing:
            raise BuildError(
                f"REGCRED_CONTROL_PLANE_BIN={configured} lacks {', '.join(missing)}; "
                "point it at a folder holding all of " + ", ".join(BINARIES)
            )
        return folder
    folder = pinned_folder()
    bin_folder = folder / "bin"
    if (folder / STAMP_NAME).is_file() and not _missing_binaries(bin_folder):
        return bin_folder
    return None


def ensure_binaries() -> Path:
    """Return the folder with the four binaries, building them first if needed.

    A cold build downloads the sources and compiles for several minutes; progress goes
    to stderr and the full compiler output to ``build.log`` in the cache folder.
    """
    found = find_binaries()
    if found is not None:
        return found
    folder = pinned_folder()
    folder.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(folder / ".lock"):
        # Another process may have finished the build while this one waited.
        found = find_binaries()
        if found is not None:
            return found
        _build(folder)
    return folder / "bin"


def _missing_binaries(folder: Path) -> list[str]:
    return [name for name in BINARIES if not os.access(folder / name, os.X_OK)]


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an flock on `path` (created if missing) for the duration of the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(folder: Path) -> None:
    if shutil.which("go") is None:
        raise BuildError(
            "the Go toolchain (go) is not on PATH; install Go 1.26 or set "
            "REGCRED_CONTROL_PLANE_BIN to a folder with " + ", ".join(BINARIES)
        )
    (folder / STAMP_NAME).unlink(missing_ok=True)
    bin_folder = folder / "bin"
    bin_folder.mkdir(exist_ok=True)
    log_path = folder / "build.log"
    env = go_environment()
    started = time.monotonic()
    with log_path.open("w") as log:
        _progress(f"building the local control plane into {bin_folder} (log: {log_path})")

        etcd_module = prepare_module(folder, "etcd", _etcd_go_mod())
        _progress(f"building etcd {ETCD_VERSION} ...")
        go_build(etcd_module, str(bin_folder / "etcd"), [ETCD_PACKAGE], env, log)

        build_kubernetes_commands(KUBERNETES_COMMANDS, folder, bin_folder, env, log)

    missing = _missing_binaries(bin_folder)
    if missing:
        raise BuildError(f"the build finished without {', '.join(missing)}; see {log_path}")
    seconds = round(time.monotonic() - started, 1)
    stamp = {"kubernetes": KUBERNETES_VERSION, "etcd": ETCD_VERSION, "buildSeconds": seconds}
    (folder / STAMP_NAME).write_text(json.dumps(stamp, indent=2) + "\n")
    _progress(f"built the local control plane in {seconds} s")


def build_kubernetes_commands(
    commands: Sequence[str],
    folder: Path,
    bin_folder: Path,
    env: Mapping[str, str],
    log: TextIO,
    sums_package: str | None = None,
) -> None:
    """Build ``k8s.io/kubernetes/cmd/COMMAND`` for each command into `bin_folder`.

    The wrapper module goes to ``folder/modules/kubernetes`` with the committed go.sum
    of `sums_package` (default: this package's, which covers the control plane's
    commands; other commands may need a go.sum listing more modules).
    """
    kubernetes_module = prepare_module(
        folder, "kubernetes", f"module {KUBERNETES_WRAPPER}\n\ngo 1.26.0\n", sums_package
    )
    kubernetes_go_mod = download_go_mod(
        f"k8s.io/kubernetes@{KUBERNETES_VERSION}", kubernetes_module, env, log
    )
    (kubernetes_module / "go.mod").write_text(kubernetes_wrapper_go_mod(kubernetes_go_mod))
    _progress(
        f"building {', '.join(commands)} {KUBERNETES_VERSION} (several minutes when cold) ..."
    )
    packages = [f"k8s.io/kubernetes/cmd/{command}" for command in commands]
    go_build(kubernetes_module, str(bin_folder) + os.sep, packages, env, log, kubernetes_ldflags())


def kubernetes_wrapper_go_mod(upstream_go_mod: str) -> str:
    """Return a wrapper go.mod that builds k8s.io/kubernetes commands outside its repo.

    It keeps upstream's ``go`` and ``godebug`` settings (a dependency's are ignored) and
    points every staging module at its published release, ``v0.Y.Z`` for ``v1.Y.Z``.
    """
    staging_version = "v0." + KUBERNETES_VERSION.removeprefix("v1.")
    staging_modules = _STAGING_REPLACE.findall(upstream_go_mod)
    if not staging_modules:
        raise BuildError("found no staging modules in k8s.io/kubernetes's go.mod")
    lines = [f"module {KUBERNETES_WRAPPER}", ""]
    lines += _go_and_godebug_directives(upstream_go_mod)
    lines += ["", f"require k8s.io/kubernetes {KUBERNETES_VERSION}", "", "replace ("]
    lines += [f"\t{module} => {module} {staging_version}" for module in staging_modules]
    lines += [")", ""]
    return "\n".join(lines)


def _go_and_godebug_directives(go_mod: str) -> list[str]:
    directives: list[str] = []
    in_godebug_block = False
    for line in go_mod.splitlines():
        if in_godebug_block:
            directives.append(line)
            in_godebug_block = line.strip() != ")"
        elif line.startswith(("go ", "godebug ")):
            directives.append(line)
            in_godebug_block = line.replace(" ", "") == "godebug("
    return directives


def _etcd_go_mod() -> str:
    return f"module {ETCD_WRAPPER}\n\ngo 1.26.0\n\nrequire {ETCD_PACKAGE} {ETCD_VERSION}\n"


def prepare_module(folder: Path, name: str, go_mod: str, sums_package: str | None = None) -> Path:
    """Create a wrapper module folder with its go.mod and the committed go.sum.

    The go.sum is ``modules/NAME/go.sum`` of `sums_package` (default: this package).
    """
    module = folder / "modules" / name
    module.mkdir(parents=True, exist_ok=True)
    (module / "go.mod").write_text(go_mod)
    committed_sum = resources.files(sums_package or __package__).joinpath("modules", name, "go.sum")
    if committed_sum.is_file():
        (module / "go.sum").write_bytes(committed_sum.read_bytes())
    else:
        (module / "go.sum").unlink(missing_ok=True)
    return module


def go_environment() -> dict[str, str]:
    """The environment for a static build with the installed Go toolchain."""
    env = dict(os.environ)
    # A static build with the installed Go; never switch toolchains behind the user's back.
    env.update({"CGO_ENABLED": "0", "GOTOOLCHAIN": "local"})
    return env


def download_go_mod(
    module_query: str, module_folder: Path, env: Mapping[str, str], log: TextIO
) -> str:
    """Download a module (checked against the wrapper's go.sum); return its go.mod text."""
    # Run inside the wrapper module so the download is checked against its go.sum.
    output = run_go(["mod", "download", "-json", module_query], module_folder, env, log)
    return Path(json.loads(output)["GoMod"]).read_text()


def go_build(
    module: Path,
    output: str,
    packages: list[str],
    env: Mapping[str, str],
    log: TextIO,
    ldflags: str = "-s -w",
) -> None:
    """Build `packages` of wrapper `module` into `output` (a file, or a folder ending in /).

    Every download is checked against the module's go.sum (-mod=mod writes no new go.mod
    lines we rely on); -trimpath keeps this machine's paths out of the binaries.
    """
    run_go(
        ["build", "-mod=mod", "-trimpath", "-ldflags", ldflags, "-o", output, *packages],
        module,
        env,
        log,
    )


def run_go(args: list[str], cwd: Path, env: Mapping[str, str], log: TextIO) -> str:
    """Run ``go ARGS`` in `cwd`, output to `log`; return stdout or raise BuildError."""
    log.write(f"$ go {' '.join(args)}  (in {cwd})\n")
    log.flush()
    started = time.monotonic()
    result = subprocess.run(
        ["go", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        check=False,
    )
    log.write(f"# exit {result.returncode} after {time.monotonic() - started:.1f} s\n")
    log.flush()
    if result.returncode != 0:
        raise BuildError(
            f"go {args[0]} failed in {cwd}; last lines of {log.name}:\n"
            + _tail(Path(log.name))
            + "\nIf it reports a missing checksum and sum.golang.org is unreachable, "
            "see docs/control-plane.md on refreshing go.sum."
        )
    return result.stdout


def kubernetes_ldflags() -> str:
    """Linker flags stamping the pinned version into a Kubernetes command."""
    # Without these stamps /version and `kubectl version` report a v0.0.0 placeholder.
    major, minor = KUBERNETES_VERSION.removeprefix("v").split(".")[:2]
    stamps = {
        "k8s.io/component-base/version.gitVersion": KUBERNETES_VERSION,
        "k8s.io/component-base/version.gitMajor": major,
        "k8s.io/component-base/version.gitMinor": minor,
        "k8s.io/component-base/version.gitTreeState": "clean",
        "k8s.io/client-go/pkg/version.gitVersion": KUBERNETES_VERSION,
        "k8s.io/client-go/pkg/version.gitMajor": major,
        "k8s.io/client-go/pkg/version.gitMinor": minor,
    }
    return " ".join(["-s", "-w", *(f"-X {name}={value}" for name, value in stamps.items())])


def _tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _progress(message: str) -> None:
    print(f"regcred: {message}", file=sys.stderr, flush=True)
