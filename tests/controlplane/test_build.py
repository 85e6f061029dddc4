"""The build's pure parts: the wrapper go.mod and how cached binaries are found."""

from __future__ import annotations

from pathlib import Path

import pytest

from regcred_dev.controlplane import build

UPSTREAM_GO_MOD = """\
// This is a generated file. Do not edit directly.

module k8s.io/kubernetes

go 1.26.0

godebug default=go1.26

require (
\tk8s.io/api v0.0.0
\tk8s.io/client-go v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tk8s.io/cri-streaming => ./staging/src/k8s.io/cri-streaming
)
"""


def test_wrapper_go_mod_replaces_each_staging_module_with_its_release() -> None:
    wrapper = build.kubernetes_wrapper_go_mod(UPSTREAM_GO_MOD)

    assert wrapper.splitlines() == [
        "module regcred.dev/controlplane/kubernetes",
        "",
        "go 1.26.0",
        "godebug default=go1.26",
        "",
        "require k8s.io/kubernetes v1.37.2",
        "",
        "replace (",
        "\tk8s.io/api => k8s.io/api v0.37.2",
        "\tk8s.io/client-go => k8s.io/client-go v0.37.2",
        "\tk8s.io/cri-streaming => k8s.io/cri-streaming v0.37.2",
        ")",
    ]


def test_wrapper_go_mod_keeps_a_godebug_block() -> None:
    upstream = UPSTREAM_GO_MOD.replace(
        "godebug default=go1.26", "godebug (\n\tdefault=go1.26\n\twinsymlink=0\n)"
    )

    wrapper = build.kubernetes_wrapper_go_mod(upstream)

    assert "godebug (\n\tdefault=go1.26\n\twinsymlink=0\n)" in wrapper


def test_wrapper_go_mod_rejects_a_go_mod_without_staging_modules() -> None:
    with pytest.raises(build.BuildError, match="no staging modules"):
        build.kubernetes_wrapper_go_mod("module k8s.io/kubernetes\n\ngo 1.26.0\n")


def make_binaries(folder: Path, names: tuple[str, ...] = build.BINARIES) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text("#!/bin/sh\n")
        (folder / name).chmod(0o755)


def test_cache_folder_name_carries_the_pins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REGCRED_CACHE_DIR", str(tmp_path))

    assert build.pinned_folder() == tmp_path / "controlplane" / "k8s-v1.37.2-etcd-v3.6.16"


def test_cached_binaries_count_only_once_the_stamp_is_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("REGCRED_CONTROL_PLANE_BIN", raising=False)
    monkeypatch.setenv("REGCRED_CACHE_DIR", str(tmp_path))
    make_binaries(build.pinned_folder() / "bin")

    assert build.find_binaries() is None  # binaries without a stamp: a build was cut short

    (build.pinned_folder() / build.STAMP_NAME).write_text("{}")
    assert build.find_binaries() == build.pinned_folder() / "bin"


def test_binaries_from_the_environment_are_used_as_they_are(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    make_binaries(tmp_path)
    monkeypatch.setenv("REGCRED_CONTROL_PLANE_BIN", str(tmp_path))

    assert build.ensure_binaries() == tmp_path.resolve()


def test_incomplete_binaries_from_the_environment_are_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    make_binaries(tmp_path, ("etcd", "kubectl"))
    monkeypatch.setenv("REGCRED_CONTROL_PLANE_BIN", str(tmp_path))

    with pytest.raises(build.BuildError, match="kube-apiserver, kube-controller-manager"):
        build.find_binaries()
