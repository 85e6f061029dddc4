"""The pure parts of the host-quirk fixes: capability stripping, daemon.json, the shim."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from regcred_dev.kind import quirks, runcwrapper

# A bounding set lacking only CAP_SYS_RESOURCE (bit 24), as on the VMs that showed the quirk.
STATUS_WITHOUT_SYS_RESOURCE = "Name:\tcat\nCapInh:\t0000000000000000\nCapBnd:\t000001fffeffffff\n"


def test_bounding_set_reads_capbnd_and_finds_the_missing_capability() -> None:
    assert runcwrapper.missing_capabilities(STATUS_WITHOUT_SYS_RESOURCE) == {"CAP_SYS_RESOURCE"}
    assert "CAP_SYS_ADMIN" in runcwrapper.bounding_set(STATUS_WITHOUT_SYS_RESOURCE)


def test_full_bounding_set_misses_nothing() -> None:
    assert runcwrapper.missing_capabilities("CapBnd:\t000001ffffffffff\n") == frozenset()


def test_strip_capabilities_keeps_only_allowed_names_in_every_set() -> None:
    allowed = frozenset({"CAP_CHOWN", "CAP_SYS_ADMIN"})
    capabilities = {
        "bounding": ["CAP_CHOWN", "CAP_SYS_RESOURCE", "CAP_SYS_ADMIN"],
        "effective": ["CAP_SYS_RESOURCE"],
        "permitted": ["CAP_CHOWN"],
    }

    changed = runcwrapper.strip_capabilities(capabilities, allowed)

    assert changed
    assert capabilities == {
        "bounding": ["CAP_CHOWN", "CAP_SYS_ADMIN"],
        "effective": [],
        "permitted": ["CAP_CHOWN"],
    }


def test_strip_capabilities_reports_no_change_when_all_are_allowed() -> None:
    capabilities = {"bounding": ["CAP_CHOWN"]}
    assert not runcwrapper.strip_capabilities(capabilities, frozenset({"CAP_CHOWN"}))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["create", "--bundle", "/b", "id"], (Path("/b/config.json"), "process.capabilities")),
        (
            [
                "--root",
                "/run/r",
                "--log",
                "/l.json",
                "--log-format",
                "json",
                "create",
                "-b",
                "/b",
                "id",
            ],
            (Path("/b/config.json"), "process.capabilities"),
        ),
        (
            ["--systemd-cgroup", "run", "--bundle=/b", "id"],
            (Path("/b/config.json"), "process.capabilities"),
        ),
        (["create", "id"], (Path("config.json"), "process.capabilities")),
        (["exec", "--process", "/tmp/p.json", "id"], (Path("/tmp/p.json"), "capabilities")),
        (["exec", "-t", "id", "sh"], None),
        (["--root", "/run/r", "start", "id"], None),
        (["--version"], None),
    ],
)
def test_spec_file_to_edit_follows_runc_arguments(
    args: list[str], expected: tuple[Path, str] | None
) -> None:
    assert runcwrapper.spec_file_to_edit(args) == expected


def test_edit_spec_strips_the_process_capabilities_of_a_bundle_config() -> None:
    spec = {"process": {"capabilities": {"bounding": ["CAP_CHOWN", "CAP_SYS_RESOURCE"]}}}

    assert runcwrapper.edit_spec(spec, "process.capabilities", frozenset({"CAP_CHOWN"}))
    assert spec == {"process": {"capabilities": {"bounding": ["CAP_CHOWN"]}}}


def test_edit_spec_leaves_a_spec_without_capabilities_alone() -> None:
    spec: dict[str, object] = {"process": {"args": ["sh"]}}
    assert not runcwrapper.edit_spec(spec, "process.capabilities", frozenset())
    assert spec == {"process": {"args": ["sh"]}}


def test_daemon_config_merge_keeps_other_keys_and_runtimes() -> None:
    current = {
        "log-level": "warn",
        "runtimes": {"nvidia": {"path": "nvidia-container-runtime"}},
    }

    merged = quirks.merged_daemon_config(current, Path("/cache/regcred-runc"))

    assert merged == {
        "log-level": "warn",
        "runtimes": {
            "nvidia": {"path": "nvidia-container-runtime"},
            "regcred-runc": {"path": "/cache/regcred-runc"},
        },
    }
    assert current["runtimes"] == {"nvidia": {"path": "nvidia-container-runtime"}}


def test_daemon_config_merge_starts_from_an_empty_config() -> None:
    assert quirks.merged_daemon_config({}, Path("/w")) == {
        "runtimes": {"regcred-runc": {"path": "/w"}}
    }


def test_caps_quirk_is_recognised_in_the_runc_error() -> None:
    error = (
        "docker: Error response from daemon: failed to create shim: OCI runtime create failed: "
        "runc create failed: unable to start container process: unable to apply caps: "
        "operation not permitted: unknown."
    )
    assert quirks.caps_quirk_in(error)
    assert not quirks.caps_quirk_in("docker: Error response from daemon: No such image")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "-d", "img"], ["run", "--runtime=regcred-runc", "-d", "img"]),
        (["create", "img"], ["create", "--runtime=regcred-runc", "img"]),
        (["ps", "-a"], ["ps", "-a"]),
        (["exec", "node", "run"], ["exec", "node", "run"]),
    ],
)
def test_docker_shim_adds_the_runtime_to_run_and_create_only(
    tmp_path: Path, args: list[str], expected: list[str]
) -> None:
    # A fake "real docker" that prints its arguments, one a line.
    fake_docker = tmp_path / "real-docker"
    fake_docker.write_text('#!/bin/sh\nfor arg in "$@"; do echo "$arg"; done\n')
    fake_docker.chmod(0o755)
    shim = tmp_path / "docker"
    shim.write_text(quirks.docker_shim_script(str(fake_docker), "regcred-runc"))
    shim.chmod(0o755)

    output = subprocess.run([shim, *args], capture_output=True, text=True, check=True).stdout

    assert output.splitlines() == expected
