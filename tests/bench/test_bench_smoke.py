"""The benchmark harness still runs end to end: tiny sizes, short windows, no figures judged.

Timings are never asserted here; only that every scenario produced its row, in the
printed table and in the JSON.

The Go floor is built here once (a fixture, outside the harness's own time limit) and
then found in the cache: with the Go build cache the control plane's build leaves, that
takes seconds; from nothing, several minutes. Building rather than skipping keeps the
Go program compiled and run against a real API server on every test run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = (
    "fan-out, warm",
    "fan-out, cold (from process start)",
    "rotation",
    "Go floor sweep: fan-out",
    "Go floor sweep: rotation",
    "setup: namespaces created, ServiceAccounts present",
    "setup: 40 unrelated Secrets created",
    "CPU-s per 1000 namespaces: fan-out, warm",
    "CPU-s per 1000 namespaces: fan-out, cold",
    "CPU-s per 1000 namespaces: rotation",
    "client CPU per request: one-thread loop",
    "client CPU per write: floors, fan-out",
    "client CPU per write: floors, rotation",
    "writes per round",
    "writes in cold fan-out",
    "cold start: first write after process start",
    "new namespace",
    "new namespaces: writes",
    "idle writes",
    "restart writes",
    "peak RSS, fan-out, rotation, cold start, new namespaces, idle",
    "peak RSS, restarted, 0 unrelated Secrets",
    "peak RSS, restarted, 40 unrelated Secrets",
    "cold start, 40 unrelated Secrets: first write",
    "cold start, 40 unrelated Secrets: converged",
    "cold start, 40 unrelated Secrets: peak RSS",
    "setup: 4 MiB of a tenant editor's Secrets created",
    "peak RSS with a tenant credential, from start",
    "peak RSS with a tenant credential and 4 MiB of its editor's Secrets, from start",
    "many credentials: fan-out (5 x 4 namespaces)",
    "CPU-s per 1000 namespaces: many credentials: fan-out",
    "many credentials: every status reports synced",
    "many credentials: writes in fan-out",
    "many credentials: reads in fan-out",
    "one source changes: time to its 4 replicas",
    "one source changes: its status reports the new content",
    "one source changes: writes",
    "connection-pool warnings",
    "operator stop on SIGTERM",
)


@pytest.fixture(scope="module")
def go_floor_built() -> Path:
    """The Go floor's binary, built unless cached (in a process of its own: `bench` is
    importable from the repository's root, not from the tests)."""
    build = subprocess.run(
        [
            sys.executable,
            "-c",
            "from bench import go_floor; print(go_floor.ensure_binary().binary)",
        ],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if build.returncode != 0:
        pytest.fail(f"the Go floor did not build:\n{build.stderr[-3000:]}", pytrace=False)
    return Path(build.stdout.strip())


@pytest.mark.timeout(1200)  # a Go floor built from nothing takes minutes on two cores
def test_the_benchmark_prints_and_writes_every_scenario(
    tmp_path: Path, go_floor_built: Path
) -> None:
    command = [
        sys.executable,
        "-m",
        "bench",
        "--sizes",
        "5",
        "--rounds",
        "2",
        "--idle-seconds",
        "1",
        "--settle-seconds",
        "1",
        "--new-namespaces",
        "4",
        "--namespace-rate",
        "20",
        "--unrelated-secrets",
        "40",
        "--tenant-secrets-mib",
        "4",
        "--stop-grace-seconds",
        "5",
        "--many-credentials",
        "5",
        "--many-credentials-namespaces",
        "20",
        "--go-floor-concurrency",
        "2",
        "4",
        "--request-loop",
        "50",
        "--results-dir",
        str(tmp_path),
    ]
    external = os.environ.get("REGCRED_TEST_KUBECONFIG")
    if external:
        command += ["--kubeconfig", external]

    result = subprocess.run(
        command, check=False, cwd=REPO, capture_output=True, text=True, timeout=300
    )

    assert result.returncode == 0, result.stderr[-3000:]
    for scenario in SCENARIOS:
        assert scenario in result.stdout, f"{scenario!r} missing from the table:\n{result.stdout}"
    [written] = tmp_path.glob("bench-*.json")
    document = json.loads(written.read_text())
    scenarios = [row["scenario"] for row in document["rows"]]
    for scenario in SCENARIOS:
        assert any(name.startswith(scenario) for name in scenarios), (
            f"{scenario!r} missing from {written.name}"
        )
    assert document["machine"]["cores"] == os.cpu_count()
    # Both concurrencies of the sweep ran, each round, in every scenario it times.
    sweep = {
        (r["round"], r["scenario"], r["concurrency"]) for r in document["sizes"][0]["go_floor"]
    }
    assert sweep == {
        (round_number, scenario, concurrency)
        for round_number in (1, 2)
        for scenario in ("fan-out", "rotation")
        for concurrency in (2, 4)
    }
    assert document["go_floor_build"]["cached"]
    # Each of the three CPU rows sets the operator against both floors' own CPU.
    by_name = {row["scenario"]: row for row in document["rows"]}
    for scenario in ("fan-out, warm", "fan-out, cold", "rotation"):
        row = by_name[f"CPU-s per 1000 namespaces: {scenario}"]
        assert float(row["floor"]) > 0 and row["go_floor"], row
