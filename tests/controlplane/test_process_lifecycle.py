"""A control plane leaves nothing behind: not on stop, not on a failed start, not on a crash."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from regcred_dev.controlplane import ControlPlaneError, LocalControlPlane

pytestmark = pytest.mark.e2e

EXIT_TIMEOUT_SECONDS = 15.0


def is_running(pid: int) -> bool:
    """True if ``pid`` names a live process (zombies count as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def processes_mentioning(text: str) -> list[int]:
    """PIDs of processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command_line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in command_line and is_running(int(entry.name)):
            found.append(int(entry.name))
    return found


def wait_until_gone(pids: list[int]) -> list[int]:
    """Wait for the processes to exit; return those still running at the deadline."""
    deadline = time.monotonic() + EXIT_TIMEOUT_SECONDS
    while (alive := [pid for pid in pids if is_running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


needs_proc = pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux /proc")


@needs_proc
def test_stop_ends_every_process_and_removes_the_folder(control_plane_bin: Path) -> None:
    with LocalControlPlane(control_plane_bin) as control_plane:
        pids = control_plane.pids()
        workdir = control_plane.workdir
        assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager"}
        assert all(is_running(pid) for pid in pids.values())

    assert [pid for pid in pids.values() if is_running(pid)] == []
    assert processes_mentioning(str(workdir)) == []
    assert not workdir.exists()


@needs_proc
def test_failed_start_quotes_the_log_and_cleans_up(control_plane_bin: Path, tmp_path: Path) -> None:
    # Real etcd, but a kube-apiserver that dies at once like one given a bad flag.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    for name in ("etcd", "kube-controller-manager", "kubectl"):
        (fake_bin / name).symlink_to(control_plane_bin / name)
    broken = fake_bin / "kube-apiserver"
    broken.write_text("#!/bin/sh\necho 'Error: unknown flag: --made-up'\nexit 3\n")
    broken.chmod(0o755)

    with pytest.raises(ControlPlaneError) as raised:
        LocalControlPlane(fake_bin).start()

    assert "kube-apiserver exited with code 3" in str(raised.value)
    assert "unknown flag: --made-up" in str(raised.value)
    assert processes_mentioning(str(fake_bin)) == []


@needs_proc
def test_children_die_when_the_python_process_is_killed(control_plane_bin: Path) -> None:
    # SIGKILL skips every Python clean-up; only the kernel's parent-death signal helps.
    script = (
        "import json, sys, time\n"
        "from pathlib import Path\n"
        "from regcred_dev.controlplane import LocalControlPlane\n"
        "control_plane = LocalControlPlane(Path(sys.argv[1]))\n"
        "control_plane.start()\n"
        "print(json.dumps({'pids': control_plane.pids(),"
        " 'workdir': str(control_plane.workdir)}), flush=True)\n"
        "time.sleep(600)\n"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script, str(control_plane_bin)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        started = json.loads(owner.stdout.readline())
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        owner.stdout.close()
    workdir = Path(started["workdir"])
    try:
        assert wait_until_gone(list(started["pids"].values())) == []
    finally:
        # Nobody was left to remove it; that is the one thing a SIGKILL does leak.
        shutil.rmtree(workdir, ignore_errors=True)
