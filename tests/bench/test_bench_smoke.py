"""The benchmark harness still runs end to end: tiny sizes, short windows, no figures judged.

Timings are never asserted here; only that every scenario produced its row, in the
printed table and in the JSON.
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
    "fan-out",
    "rotation",
    "writes per round",
    "new namespace",
    "idle writes",
    "restart writes",
    "peak RSS, fan-out, rotation, new namespaces, idle",
    "peak RSS, restarted, 0 unrelated Secrets",
    "peak RSS, restarted, 40 unrelated Secrets",
    "many credentials: fan-out (5 x 4 namespaces)",
    "many credentials: every status reports synced",
    "many credentials: writes in fan-out",
    "many credentials: reads in fan-out",
    "one source changes: time to its 4 replicas",
    "one source changes: its status reports the new content",
    "one source changes: writes",
    "operator stop on SIGTERM",
)


def test_the_benchmark_prints_and_writes_every_scenario(tmp_path: Path) -> None:
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
        "--stop-grace-seconds",
        "5",
        "--many-credentials",
        "5",
        "--many-credentials-namespaces",
        "20",
        "--results-dir",
        str(tmp_path),
    ]
    external = os.environ.get("REGCRED_TEST_KUBECONFIG")
    if external:
        command += ["--kubeconfig", external]

    result = subprocess.run(
        command, check=False, cwd=REPO, capture_output=True, text=True, timeout=180
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
