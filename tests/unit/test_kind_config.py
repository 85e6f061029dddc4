"""The kind cluster config and the node's containerd config, as generated."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from regcred_dev.kind import KindError, kind_config
from regcred_dev.kind.cluster import stage_certs_d
from regcred_dev.kind.node import containerd_config, cri_base_spec


def test_kind_config_is_one_control_plane_node_of_the_image() -> None:
    config = kind_config("regcred-kind-node:v1.37.2-abc", None, cgroup_v1=False)

    assert config == {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "nodes": [{"role": "control-plane", "image": "regcred-kind-node:v1.37.2-abc"}],
    }


def test_the_certs_d_folder_is_mounted_where_containerd_reads_it(tmp_path: Path) -> None:
    config = kind_config("node:1", tmp_path / "certs.d", cgroup_v1=False)

    assert config["nodes"][0]["extraMounts"] == [
        {
            "hostPath": str(tmp_path / "certs.d"),
            "containerPath": "/etc/containerd/certs.d",
            "readOnly": True,
        }
    ]


def test_staged_certs_d_holds_one_ca_per_registry(tmp_path: Path) -> None:
    ca_a, ca_b = tmp_path / "a.pem", tmp_path / "b.pem"
    ca_a.write_text("A")
    ca_b.write_text("B")
    certs_d = tmp_path / "certs.d"

    stage_certs_d(certs_d, {"172.18.0.1:5000": ca_a, "registry.test": ca_b})

    assert sorted(str(p.relative_to(certs_d)) for p in certs_d.rglob("*.crt")) == [
        "172.18.0.1:5000/ca.crt",
        "registry.test/ca.crt",
    ]
    assert (certs_d / "172.18.0.1:5000" / "ca.crt").read_text() == "A"


def test_restaging_replaces_the_set_but_keeps_the_mounted_folder(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("new")
    certs_d = tmp_path / "certs.d"
    stage_certs_d(certs_d, {"old:5000": ca})
    inode = certs_d.stat().st_ino

    stage_certs_d(certs_d, {"new:5000": ca})

    assert [p.name for p in certs_d.iterdir()] == ["new:5000"]
    assert certs_d.stat().st_ino == inode


@pytest.mark.parametrize("registry", ["", "..", "a/b:5000"])
def test_a_registry_name_cannot_escape_the_folder(tmp_path: Path, registry: str) -> None:
    with pytest.raises(KindError):
        stage_certs_d(tmp_path / "certs.d", {registry: tmp_path / "ca.pem"})


def test_cgroup_v1_hosts_get_a_kubelet_patch_allowing_it() -> None:
    config = kind_config("node:1", None, cgroup_v1=True)

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
