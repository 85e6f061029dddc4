"""The kind cluster config and the node's containerd config, as generated."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from regcred.kind import kind_config
from regcred.kind.node import containerd_config, cri_base_spec


def test_kind_config_is_one_control_plane_node_of_the_image() -> None:
    config = kind_config("regcred-kind-node:v1.37.2-abc", {}, cgroup_v1=False)

    assert config == {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "nodes": [{"role": "control-plane", "image": "regcred-kind-node:v1.37.2-abc"}],
    }


def test_each_trusted_registry_ca_is_mounted_into_containerd_certs_d(tmp_path: Path) -> None:
    ca_a, ca_b = tmp_path / "a.pem", tmp_path / "b.pem"
    trusted = {"172.18.0.1:5000": ca_b, "registry.test:443": ca_a}

    config = kind_config("node:1", trusted, cgroup_v1=False)

    assert config["nodes"][0]["extraMounts"] == [
        {
            "hostPath": str(ca_b),
            "containerPath": "/etc/containerd/certs.d/172.18.0.1:5000/ca.crt",
            "readOnly": True,
        },
        {
            "hostPath": str(ca_a),
            "containerPath": "/etc/containerd/certs.d/registry.test:443/ca.crt",
            "readOnly": True,
        },
    ]


def test_relative_ca_paths_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = kind_config("node:1", {"r:5000": Path("ca.pem")}, cgroup_v1=False)

    mount = config["nodes"][0]["extraMounts"][0]
    assert mount["hostPath"] == str(tmp_path / "ca.pem")


def test_cgroup_v1_hosts_get_a_kubelet_patch_allowing_it() -> None:
    config = kind_config("node:1", {}, cgroup_v1=True)

    patches = [yaml.safe_load(patch) for patch in config["kubeadmConfigPatches"]]
    assert patches == [
        {
            "kind": "KubeletConfiguration",
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "failCgroupV1": False,
        }
    ]


def test_containerd_config_uses_the_preloaded_pause_and_certs_d() -> None:
    parsed = tomllib.loads(containerd_config("registry.k8s.io/pause:3.10.2", False))

    cri = parsed["plugins"]["io.containerd.grpc.v1.cri"]
    assert parsed["version"] == 2
    assert cri["sandbox_image"] == "registry.k8s.io/pause:3.10.2"
    assert cri["restrict_oom_score_adj"] is False
    assert cri["registry"]["config_path"] == "/etc/containerd/certs.d"
    assert cri["cni"]["bin_dir"] == "/usr/lib/cni"
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is True


def test_containerd_config_restricts_oom_score_adj_only_when_asked() -> None:
    parsed = tomllib.loads(containerd_config("p:1", True))
    assert parsed["plugins"]["io.containerd.grpc.v1.cri"]["restrict_oom_score_adj"] is True


def test_cri_base_spec_adds_kinds_hook_and_drops_rlimits() -> None:
    default: dict[str, Any] = {
        "process": {"args": ["sh"], "rlimits": [{"type": "RLIMIT_NOFILE"}]},
        "hooks": {"createContainer": [{"path": "/other"}]},
        "linux": {},
    }

    spec = cri_base_spec(default)

    assert spec["process"] == {"args": ["sh"]}
    assert spec["hooks"] == {
        "createContainer": [{"path": "/other"}, {"path": "/kind/bin/mount-product-files.sh"}]
    }
    assert default["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE"}]  # input untouched
