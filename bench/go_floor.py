"""The Go floor: a client-go program (the Go module in `gofloor/`) making exactly the
writes a scenario needs, at each concurrency of a sweep.

The Python floor measures what a Python client does at 16 threads; on two cores that
is slower than the machine allows, so it flatters the operator. A Go client over one
HTTP/2 connection is what a Go controller would do, and its best time over the sweep
is the figure the operator is held to.

The binary is built once through the Go module proxy, every download checked against
the module's committed go.sum, into the regcred cache under a folder named after the
client-go pin and a digest of the module's files: a change of pin or source gives a
new folder, and the binary appears only after a successful build.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regcred_dev.controlplane.build import (
    BuildError,
    cache_root,
    exclusive_lock,
    go_build,
    go_environment,
)

__all__ = [
    "BINARY_OVERRIDE",
    "CLIENT_GO_VERSION",
    "Build",
    "GoFloorResult",
    "Plan",
    "best",
    "binary_path",
    "ensure_binary",
    "find_binary",
    "python_floor_program",
    "run_plan",
    "run_program",
]

MODULE_DIR = Path(__file__).resolve().parent / "gofloor"
MODULE_FILES = ("go.mod", "go.sum", "main.go")
# Names a gofloor binary to use instead of building one.
BINARY_OVERRIDE = "REGCRED_GO_FLOOR_BIN"
NAME = "gofloor"
RUN_TIMEOUT_SECONDS = 3600.0


def _client_go_version() -> str:
    found = re.search(
        r"^\s*k8s\.io/client-go (v\S+)", (MODULE_DIR / "go.mod").read_text(), re.MULTILINE
    )
    if found is None:
        raise BuildError(f"no k8s.io/client-go requirement in {MODULE_DIR / 'go.mod'}")
    return found.group(1)


CLIENT_GO_VERSION = _client_go_version()


def _digest() -> str:
    digest = hashlib.sha256()
    for name in MODULE_FILES:
        digest.update(name.encode() + b"\0" + (MODULE_DIR / name).read_bytes())
    return digest.hexdigest()[:12]


def binary_path() -> Path:
    """Where the binary for these pins and this source is, or would be, cached."""
    return cache_root() / "tools" / f"{NAME}-client-go-{CLIENT_GO_VERSION}-{_digest()}" / NAME


@dataclass(frozen=True)
class Build:
    """The binary, and what getting it took: 0 s and `cached` when it was already built."""

    binary: Path
    seconds: float
    cached: bool


def find_binary() -> Path | None:
    """The override or the cached binary, without building; None if neither exists."""
    configured = os.environ.get(BINARY_OVERRIDE)
    if configured:
        return Path(configured)
    binary = binary_path()
    return binary if binary.is_file() else None


def ensure_binary() -> Build:
    """Return the binary, building it first unless it is cached or overridden.

    Raises BuildError when Go is missing or the build fails.
    """
    found = find_binary()
    if found is not None:
        return Build(found, 0.0, cached=True)
    binary = binary_path()
    started = time.monotonic()
    # A concurrent run (the smoke test, say) may be building it already.
    with exclusive_lock(binary.parent / ".lock"):
        if binary.is_file():
            return Build(binary, time.monotonic() - started, cached=True)
        _build(binary)
    return Build(binary, time.monotonic() - started, cached=False)


def _build(binary: Path) -> None:
    if shutil.which("go") is None:
        raise BuildError(
            f"the Go floor needs the Go toolchain on PATH (or {BINARY_OVERRIDE} naming a binary)"
        )
    folder = binary.parent
    # Built from a copy: `go build -mod=mod` may rewrite go.mod, and the work tree stays clean.
    module = folder / "module"
    module.mkdir(exist_ok=True)
    for name in MODULE_FILES:
        shutil.copyfile(MODULE_DIR / name, module / name)
    partial = folder / f"{NAME}.partial"
    print(
        f"regcred: building the Go floor (client-go {CLIENT_GO_VERSION}) ...",
        file=sys.stderr,
        flush=True,
    )
    with (folder / "build.log").open("w") as log:
        go_build(module, str(partial), ["."], go_environment(), log)
    partial.rename(binary)


# -- plans ---------------------------------------------------------------------------
Write = dict[str, str]


class Plan:
    """What the program is asked to do: bodies by key, and scenarios of per-namespace writes.

    Each item is one namespace's writes, made in order by one worker; untimed scenarios
    undo the timed ones before the next concurrency.
    """

    def __init__(self) -> None:
        self.bodies: dict[str, Any] = {}
        self.scenarios: list[dict[str, Any]] = []

    def body(self, key: str, body: Any) -> str:
        self.bodies[key] = body
        return key

    def scenario(self, name: str, items: Iterable[list[Write]], timed: bool = True) -> None:
        self.scenarios.append({"name": name, "timed": timed, "items": list(items)})

    def document(self, concurrency: Sequence[int]) -> dict[str, Any]:
        return {
            "concurrency": list(concurrency),
            "bodies": self.bodies,
            "scenarios": self.scenarios,
        }


def create_secret(namespace: str, body: str) -> Write:
    return {"op": "create-secret", "namespace": namespace, "body": body}


def update_secret(namespace: str, body: str) -> Write:
    return {"op": "update-secret", "namespace": namespace, "body": body}


def delete_secret(namespace: str, name: str) -> Write:
    return {"op": "delete-secret", "namespace": namespace, "name": name}


def patch_account(namespace: str, body: str, name: str = "default") -> Write:
    """A JSON merge patch of a ServiceAccount."""
    return {"op": "patch-account", "namespace": namespace, "name": name, "body": body}


def patch_config_map(namespace: str, name: str, body: str) -> Write:
    """A JSON merge patch of a ConfigMap: the request loop's one request."""
    return {"op": "patch-configmap", "namespace": namespace, "name": name, "body": body}


# -- running ---------------------------------------------------------------------------
@dataclass(frozen=True)
class GoFloorResult:
    """One timed scenario at one concurrency, in one round."""

    round: int
    scenario: str
    concurrency: int
    seconds: float
    cpu_seconds: float  # the Go process's user + system time in the scenario
    requests: int


def python_floor_program() -> list[str]:
    """The Python floor (`bench.python_floor`), which reads the same plans."""
    return [sys.executable, "-m", "bench.python_floor"]


def run_plan(
    binary: Path, kubeconfig: Path, plan: Plan, concurrency: Sequence[int], round_number: int
) -> tuple[list[GoFloorResult], float]:
    """Run the sweep; return its timed results and the program's start-up seconds."""
    return run_program([str(binary)], kubeconfig, plan, concurrency, round_number)


def run_program(
    program: Sequence[str],
    kubeconfig: Path,
    plan: Plan,
    concurrency: Sequence[int],
    round_number: int,
) -> tuple[list[GoFloorResult], float]:
    """Run a floor program (the Go floor, or the Python floor's command) on `plan`."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="gofloor-plan-") as plan_file:
        json.dump(plan.document(concurrency), plan_file)
        plan_file.flush()
        finished = subprocess.run(
            [*program, "--kubeconfig", str(kubeconfig), "--plan", plan_file.name],
            cwd=MODULE_DIR.parent.parent,
            capture_output=True,
            text=True,
            check=False,
            timeout=RUN_TIMEOUT_SECONDS,
        )
    if finished.returncode != 0:
        raise RuntimeError(f"{program[-1]} failed: {finished.stderr.strip()[-2000:]}")
    results, startup = [], 0.0
    for line in finished.stdout.splitlines():
        record = json.loads(line)
        if "startupSeconds" in record:
            startup = record["startupSeconds"]
            continue
        results.append(
            GoFloorResult(
                round=round_number,
                scenario=record["scenario"],
                concurrency=record["concurrency"],
                seconds=record["seconds"],
                cpu_seconds=record["cpuSeconds"],
                requests=record["requests"],
            )
        )
    return results, startup


@dataclass(frozen=True)
class Best:
    """The concurrency whose median time was lowest, with its figures of every round."""

    concurrency: int
    seconds: list[float]
    cpu_seconds: list[float]
    # Median seconds at each concurrency of the sweep.
    by_concurrency: dict[int, float]


def best(results: Iterable[GoFloorResult], scenario: str) -> Best | None:
    """The best concurrency for `scenario`; None if the Go floor did not run it."""
    chosen = [result for result in results if result.scenario == scenario]
    levels = sorted({result.concurrency for result in chosen})
    if not levels:
        return None
    medians = {
        level: statistics.median(r.seconds for r in chosen if r.concurrency == level)
        for level in levels
    }
    winner = min(levels, key=lambda level: medians[level])
    at_best = [result for result in chosen if result.concurrency == winner]
    return Best(
        winner,
        [result.seconds for result in at_best],
        [result.cpu_seconds for result in at_best],
        medians,
    )
