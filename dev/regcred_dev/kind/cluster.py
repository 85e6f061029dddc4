"""Create, reuse and delete kind clusters of the locally built node image.

`create_cluster` writes a kind config (the node image, the registries whose CA the
node must trust, kubelet's cgroup v1 allowance where the host needs it), runs the
pinned kind with the host-quirk shim on its PATH when needed, and waits until the node
is Ready and CoreDNS serves.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from regcred_dev.controlplane.build import cache_root, ensure_binaries
from regcred_dev.kind.docker import DockerError, progress, run_docker
from regcred_dev.kind.node import NodeImage, ensure_kind, ensure_node_image

__all__ = [
    "KindCluster",
    "KindError",
    "cgroup_v1_host",
    "cluster_exists",
    "create_cluster",
    "delete_cluster",
    "kind_config",
    "load_image",
    "stage_certs_d",
    "trust_registry",
]

KIND_NETWORK = "kind"
CERTS_D = "/etc/containerd/certs.d"
KIND_ERROR_LINES = 40


class KindError(RuntimeError):
    """kind failed, or the cluster did not become ready in time."""


@dataclass(frozen=True)
class KindCluster:
    """A running kind cluster: where its kubeconfig is and how the node reaches the host."""

    name: str
    kubeconfig: Path
    node_image: str
    network: str
    # The kind network's IPv4 gateway: the host as the node sees it (for a registry
    # served on the host, say).
    gateway: str

    @property
    def node_container(self) -> str:
        return f"{self.name}-control-plane"


def kind_config(node_image: str, certs_d: Path | None, cgroup_v1: bool) -> dict[str, Any]:
    """The kind cluster config: one schedulable control-plane node of `node_image`.

    `certs_d` (see `stage_certs_d`) is mounted as the node's /etc/containerd/certs.d,
    where containerd looks for registry CAs (``config_path`` in the node image). A
    folder, not one mount per CA file: a mount target like ``.../HOST:PORT/ca.crt``
    holds a colon, which ``docker run --volume`` cannot express.
    """
    mounts = (
        [{"hostPath": str(certs_d.resolve()), "containerPath": CERTS_D, "readOnly": True}]
        if certs_d is not None
        else []
    )
    node: dict[str, Any] = {"role": "control-plane", "image": node_image}
    if mounts:
        node["extraMounts"] = mounts
    config: dict[str, Any] = {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "nodes": [node],
    }
    if cgroup_v1:
        # kubelet 1.35+ refuses to start on cgroup v1 unless told this is intended.
        config["kubeadmConfigPatches"] = [
            yaml.safe_dump(
                {
                    "kind": "KubeletConfiguration",
                    "apiVersion": "kubelet.config.k8s.io/v1beta1",
                    "failCgroupV1": False,
                }
            )
        ]
    return config


def stage_certs_d(folder: Path, trusted_registries: Mapping[str, Path]) -> None:
    """Make `folder` hold exactly ``HOST:PORT/ca.crt`` for each trusted registry.

    The folder is kept (it is bind-mounted into a running node), only its contents
    change, so a reused cluster picks up a new CA on its next pull.
    """
    for registry in trusted_registries:
        _check_registry_name(registry)
    folder.mkdir(parents=True, exist_ok=True)
    for entry in folder.iterdir():
        if entry.name not in trusted_registries:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    for registry, ca_file in trusted_registries.items():
        _write_registry_ca(folder, registry, ca_file)


def trust_registry(name: str, registry: str, ca_file: Path) -> None:
    """Make running cluster `name` trust `ca_file` for ``HOST:PORT`` from its next pull on.

    For registries that exist only once the cluster does (on its Docker network, say).
    """
    _check_registry_name(registry)
    _write_registry_ca(certs_d_folder(name), registry, ca_file)


def _check_registry_name(registry: str) -> None:
    if not registry or "/" in registry or registry in (".", ".."):
        raise KindError(f"not a registry HOST[:PORT]: {registry!r}")


def _write_registry_ca(folder: Path, registry: str, ca_file: Path) -> None:
    (folder / registry).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ca_file, folder / registry / "ca.crt")


def certs_d_folder(name: str) -> Path:
    """The host folder mounted as cluster `name`'s /etc/containerd/certs.d."""
    return cache_root() / "kind" / "clusters" / name / "certs.d"


def cgroup_v1_host() -> bool:
    """Whether this host mounts cgroup v1 (no unified hierarchy at /sys/fs/cgroup)."""
    return not Path("/sys/fs/cgroup/cgroup.controllers").is_file()


def create_cluster(
    name: str,
    kubeconfig_path: Path,
    trusted_registries: Mapping[str, Path] | None = None,
    timeout_seconds: float = 600,
) -> KindCluster:
    """Create kind cluster `name` (or reuse a healthy one) and wait until it serves.

    Writes its admin kubeconfig to `kubeconfig_path`. A cluster of that name that
    exists but is not healthy, or runs another node image, is deleted and recreated.
    `trusted_registries` maps ``HOST:PORT`` to a CA file the node's containerd trusts
    for that registry (copied; on a reused cluster the set is replaced).
    """
    node = ensure_node_image()
    kubeconfig_path = kubeconfig_path.resolve()
    kubeconfig_path.parent.mkdir(parents=True, exist_ok=True)
    certs_d = certs_d_folder(name)
    stage_certs_d(certs_d, trusted_registries or {})
    if cluster_exists(name):
        if _node_image_of(name) == node.tag and _reuse(name, kubeconfig_path):
            progress(f"reusing kind cluster {name}")
            return _described(name, kubeconfig_path, node.tag)
        progress(f"kind cluster {name} is unhealthy or outdated; recreating it")
        delete_cluster(name)
    config = kind_config(node.tag, certs_d, cgroup_v1_host())
    started = time.monotonic()
    with tempfile.NamedTemporaryFile("w", prefix="regcred-kind-", suffix=".yaml") as config_file:
        yaml.safe_dump(config, config_file)
        config_file.flush()
        progress(f"creating kind cluster {name} from {node.tag} ...")
        _run_kind(
            [
                "create",
                "cluster",
                "--name",
                name,
                "--config",
                config_file.name,
                "--kubeconfig",
                str(kubeconfig_path),
                "--wait",
                "0s",
                "--retain",
            ],
            node,
        )
    try:
        _wait_until_serving(kubeconfig_path, started + timeout_seconds)
    except KindError:
        # --retain kept the node for this message; then it goes, as kind would do.
        logs = run_docker(["logs", "--tail", "30", f"{name}-control-plane"], check=False)
        delete_cluster(name)
        raise KindError(
            f"kind cluster {name} did not become ready; node log tail:\n{logs}"
        ) from None
    progress(f"kind cluster {name} ready in {time.monotonic() - started:.0f} s")
    return _described(name, kubeconfig_path, node.tag)


def delete_cluster(name: str) -> None:
    """Delete kind cluster `name` (nothing happens when it does not exist)."""
    _run_kind(["delete", "cluster", "--name", name])
    shutil.rmtree(certs_d_folder(name).parent, ignore_errors=True)


def load_image(name: str, image_tag: str) -> None:
    """Copy a local engine image into the cluster's node (``kind load docker-image``)."""
    _run_kind(["load", "docker-image", "--name", name, image_tag])


def cluster_exists(name: str) -> bool:
    """Whether kind knows a cluster of this name."""
    return name in _run_kind(["get", "clusters"]).split()


def _reuse(name: str, kubeconfig_path: Path) -> bool:
    running = run_docker(
        ["inspect", "--format", "{{.State.Running}}", f"{name}-control-plane"], check=False
    ).strip()
    if running != "true":
        return False
    kubeconfig_path.write_text(_run_kind(["get", "kubeconfig", "--name", name]))
    kubeconfig_path.chmod(0o600)
    try:
        _wait_until_serving(kubeconfig_path, time.monotonic() + 60)
    except KindError:
        return False
    return True


def _node_image_of(name: str) -> str:
    return run_docker(
        ["inspect", "--format", "{{.Config.Image}}", f"{name}-control-plane"], check=False
    ).strip()


def _described(name: str, kubeconfig_path: Path, node_image: str) -> KindCluster:
    return KindCluster(
        name=name,
        kubeconfig=kubeconfig_path,
        node_image=node_image,
        network=KIND_NETWORK,
        gateway=network_gateway(KIND_NETWORK),
    )


def network_gateway(network: str) -> str:
    """The IPv4 gateway of a docker network."""
    output = run_docker(["network", "inspect", "--format", "{{json .IPAM.Config}}", network])
    for entry in json.loads(output) or []:
        gateway = entry.get("Gateway", "")
        if gateway and ":" not in gateway:
            return str(gateway)
    raise DockerError(f"docker network {network} has no IPv4 gateway")


def _wait_until_serving(kubeconfig: Path, deadline: float) -> None:
    """Wait for every node Ready and CoreDNS Ready, each check bounded by `deadline`."""
    kubectl = str(ensure_binaries() / "kubectl")
    checks = [
        ["wait", "--for=condition=Ready", "node", "--all"],
        [
            "--namespace",
            "kube-system",
            "wait",
            "--for=condition=Ready",
            "pod",
            "--selector",
            "k8s-app=kube-dns",
        ],
    ]
    for check in checks:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise KindError(f"timed out waiting for: kubectl {' '.join(check)}")
            result = subprocess.run(
                [
                    kubectl,
                    "--kubeconfig",
                    str(kubeconfig),
                    *check,
                    f"--timeout={int(max(remaining, 1))}s",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode == 0:
                break
            # `kubectl wait` fails at once while no pod matches yet; poll again.
            time.sleep(2)


def _run_kind(args: list[str], node: NodeImage | None = None) -> str:
    """Run the pinned kind; with `node`, its docker shim (if any) goes first on PATH.

    Only ``create`` starts containers, so only it needs the shim.
    """
    env = dict(os.environ)
    # Be explicit: kind would otherwise pick podman or nerdctl if found first.
    env["KIND_EXPERIMENTAL_PROVIDER"] = "docker"
    if node is not None and node.docker_shim_folder is not None:
        env["PATH"] = f"{node.docker_shim_folder}{os.pathsep}{env.get('PATH', '')}"
    kind_binary = node.kind_binary if node is not None else ensure_kind()
    result = subprocess.run(
        [str(kind_binary), *args], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        # kubeadm's verbose output can run to thousands of lines; the end says why.
        tail = "\n".join(result.stderr.strip().splitlines()[-KIND_ERROR_LINES:])
        raise KindError(f"kind {' '.join(args[:2])} failed; its last lines:\n{tail}")
    return result.stdout
