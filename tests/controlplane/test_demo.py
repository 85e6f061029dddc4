"""`make demo` (`regcred-dev demo`): the operator on its own local control plane, examples applied."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_process_lifecycle import needs_proc, wait_until_gone

pytestmark = pytest.mark.e2e

REPOSITORY = Path(__file__).resolve().parents[2]
READY_TIMEOUT_SECONDS = 180.0


def read_until_ready(demo: subprocess.Popen) -> str:
    """The demo's output up to and including its `ready:` line."""
    output = ""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while "ready: kubeconfig=" not in output:
        remaining = deadline - time.monotonic()
        assert remaining > 0 and demo.poll() is None, f"demo not ready:\n{output}"
        # Read the pipe itself: lines left in a file object's buffer would never wake select.
        if select.select([demo.stdout], [], [], remaining)[0]:
            chunk = os.read(demo.stdout.fileno(), 65536)
            assert chunk, f"demo closed its output:\n{output}"
            output += chunk.decode(errors="replace")
    return output


def children_of(parent: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            children.append(int(stat.parent.name))
    return children


@needs_proc
def test_demo_syncs_the_examples_and_cleans_up_on_ctrl_c(control_plane_bin: Path, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "demo.kubeconfig"
    demo = subprocess.Popen(
        [sys.executable, "-m", "regcred_dev.cli", "demo", "--kubeconfig", str(kubeconfig)],
        cwd=REPOSITORY,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "REGCRED_CONTROL_PLANE_BIN": str(control_plane_bin), "PYTHONUNBUFFERED": "1"},
    )
    try:
        output = read_until_ready(demo)
        secrets = subprocess.run(
            [str(control_plane_bin / "kubectl"), "--kubeconfig", str(kubeconfig), "get", "secrets", "-A",
             "-l", "regcred.dev/credential=acme", "-o", "json"],
            capture_output=True, text=True, check=True,
        )
        replicas = {item["metadata"]["namespace"] for item in json.loads(secrets.stdout)["items"]}
        control_plane = children_of(demo.pid)
        demo.send_signal(signal.SIGINT)
        output += demo.communicate(timeout=60)[0]
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert replicas == {"team-frontend", "team-backend"}
    assert "team-frontend" in output and "acme-pull" in output
    assert "demo-only-password" not in output
    assert demo.returncode == 0
    assert len(control_plane) == 3  # etcd, kube-apiserver, kube-controller-manager
    assert wait_until_gone(control_plane) == []
