"""Pods really run on the locally built node: a loaded image starts, Service DNS answers."""

from __future__ import annotations

import json

from kind_helpers import (
    TRUSTED_CA_TEXT,
    TRUSTED_REGISTRY,
    Kubectl,
    pod_manifest,
    wait_for_pod_phase,
)

from regcred_dev.kind import KindCluster, ensure_python_base_image, load_image
from regcred_dev.kind.docker import run_docker


def test_node_is_ready_and_schedulable(kubectl: Kubectl) -> None:
    nodes = kubectl.json("get", "nodes")["items"]
    assert isinstance(nodes, list) and len(nodes) == 1
    taints = nodes[0]["spec"].get("taints", [])
    assert not [t for t in taints if t["effect"] in ("NoSchedule", "NoExecute")], taints
    conditions = {c["type"]: c["status"] for c in nodes[0]["status"]["conditions"]}
    assert conditions["Ready"] == "True"


def test_a_pod_of_a_loaded_local_image_resolves_service_dns(
    kind_cluster: KindCluster, kubectl: Kubectl, namespace: str
) -> None:
    image = ensure_python_base_image()
    load_image(kind_cluster.name, image)
    kubectl("create", "service", "clusterip", "dns-probe", "--tcp=80:80", "--namespace", namespace)
    cluster_ip = kubectl.json("get", "service", "dns-probe", "--namespace", namespace)["spec"][
        "clusterIP"
    ]
    lookup = (
        "import socket, sys; "
        f"print(socket.gethostbyname('dns-probe.{namespace}.svc.cluster.local')); "
        "print(socket.gethostbyname('kubernetes.default.svc.cluster.local'))"
    )
    manifest = pod_manifest("resolver", image, ["python3", "-c", lookup])
    kubectl("apply", "--namespace", namespace, "--filename", "-", stdin=json.dumps(manifest))

    phase = wait_for_pod_phase(kubectl, namespace, "resolver", {"Succeeded", "Failed"})

    output = kubectl("logs", "resolver", "--namespace", namespace).split()
    assert phase == "Succeeded", output
    kubernetes_ip = kubectl.json("get", "service", "kubernetes", "--namespace", "default")["spec"][
        "clusterIP"
    ]
    assert output == [cluster_ip, kubernetes_ip]


def test_a_long_running_pod_reaches_running(kubectl: Kubectl, namespace: str) -> None:
    # The preloaded pause image: no pull, so this shows the node runs containers at all.
    pause = next(
        name
        for image in kubectl.json("get", "nodes")["items"][0]["status"]["images"]
        for name in image["names"]
        if name.startswith("registry.k8s.io/pause:")
    )
    manifest = pod_manifest("sleeper", pause, None)
    kubectl("apply", "--namespace", namespace, "--filename", "-", stdin=json.dumps(manifest))

    assert wait_for_pod_phase(kubectl, namespace, "sleeper", {"Running"}) == "Running"


def test_a_trusted_registry_ca_is_where_containerd_reads_it(kind_cluster: KindCluster) -> None:
    node = kind_cluster.node_container
    ca_path = f"/etc/containerd/certs.d/{TRUSTED_REGISTRY}/ca.crt"

    mounted = run_docker(["exec", node, "cat", ca_path])
    config = run_docker(["exec", node, "cat", "/etc/containerd/config.toml"])

    assert mounted == TRUSTED_CA_TEXT
    assert 'config_path = "/etc/containerd/certs.d"' in config
