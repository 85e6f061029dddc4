"""`regcred-dev kind demo` (`make demo-kind`): a tenant Pod on a real node pulls a private image.

On a kind cluster of the locally built node image, with the operator installed from
its own image as deploy/kind says, it shows the problem and the fix in order:

1. a private registry (TLS + htpasswd) on the cluster's network, trusted by the node,
   holding a runnable image;
2. a tenant namespace whose Deployment of that image fails to pull (401);
3. a source Secret and a RegistryCredential with ``restartStuckPods: true`` selecting
   the namespace: the operator replicates the pull secret, patches the ServiceAccount
   and deletes the stuck Pod once; its ReplicaSet's new Pod pulls and runs.

Then it waits for Ctrl-C and deletes the cluster and the registry container, unless
asked to keep them. It talks to the cluster through kubectl only.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from regcred_dev.controlplane.kubectl import Kubectl, wait_for
from regcred_dev.kind.cluster import (
    KindCluster,
    certs_d_folder,
    create_cluster,
    delete_cluster,
    load_image,
    trust_registry,
)
from regcred_dev.kind.operator_image import build_operator_image
from regcred_dev.kind.registry import ContainerRegistry
from regcred_dev.kind.tenant import build_tenant_program

__all__ = ["DemoSettings", "run_kind_demo"]

OPERATOR_NAMESPACE = "regcred-system"
DEPLOYMENT = "regcred-operator"
TENANT_NAMESPACE = "demo-tenant"
TENANT_LABEL = ("tenant", "demo")
APP = "app"
CREDENTIAL = "demo"
SOURCE_SECRET = "demo-registry-password"
PULL_SECRET = "private-registry"
PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff")
ROLLOUT_SECONDS = 240
PULL_SECONDS = 180
POLL_SECONDS = 1.0

T = TypeVar("T")


@dataclass(frozen=True)
class DemoSettings:
    """What `regcred-dev kind demo` was asked for."""

    name: str  # the kind cluster; the registry container is NAME-registry
    source: Path  # the checkout holding the Dockerfile and deploy/kind
    kubeconfig: Path | None = None  # default: beside the cluster's cache files
    keep: bool = False  # leave the cluster and registry running after Ctrl-C


def run_kind_demo(settings: DemoSettings) -> None:
    """Run the demo until interrupted (KeyboardInterrupt), then clean up."""
    kubeconfig = settings.kubeconfig or certs_d_folder(settings.name).parent / "kubeconfig"
    registry: ContainerRegistry | None = None
    try:
        cluster = _step("kind cluster", lambda: create_cluster(settings.name, kubeconfig))
        kubectl = Kubectl.pinned(cluster.kubeconfig)
        _step("operator image", lambda: _install_operator(cluster, kubectl, settings.source))
        registry = ContainerRegistry(f"{settings.name}-registry", cluster.network, username="demo")
        image = _step("private registry", lambda: _start_registry(cluster, registry))
        demo = TenantDemo(kubectl, registry)
        _step("tenant without credentials", lambda: demo.show_pull_failure(image))
        _step("RegistryCredential", demo.show_recovery)
        _announce(cluster, registry)
        while True:
            time.sleep(POLL_SECONDS)
    finally:
        _clean_up(settings, registry)


def _step(title: str, action: Callable[[], T]) -> T:
    print(f"\n==> {title}", flush=True)
    started = time.monotonic()
    result = action()
    print(f"    ({title}: {time.monotonic() - started:.1f} s)", flush=True)
    return result


def _install_operator(cluster: KindCluster, kubectl: Kubectl, source: Path) -> None:
    """Build and load regcred-operator:dev, apply deploy/kind, wait for the rollout."""
    tag = build_operator_image(source)
    load_image(cluster.name, tag)
    existed = kubectl("get", "deployment", DEPLOYMENT, "--namespace", OPERATOR_NAMESPACE,
                      "--ignore-not-found", "--output", "name").strip()
    kubectl("apply", "--server-side", "-k", str(source / "deploy" / "kind"))
    if existed:
        # A reused cluster runs the previous build under the same tag.
        kubectl("rollout", "restart", f"deployment/{DEPLOYMENT}", "--namespace", OPERATOR_NAMESPACE)
    kubectl("rollout", "status", f"deployment/{DEPLOYMENT}", "--namespace", OPERATOR_NAMESPACE,
            f"--timeout={ROLLOUT_SECONDS}s", timeout=ROLLOUT_SECONDS + 30)
    print(kubectl("get", "pods", "--namespace", OPERATOR_NAMESPACE), end="")
    # A kept cluster of an earlier run still has the demo's objects: start afresh.
    kubectl("delete", "registrycredential", CREDENTIAL, "--ignore-not-found")
    kubectl("delete", "secret", SOURCE_SECRET, "--namespace", OPERATOR_NAMESPACE, "--ignore-not-found")
    kubectl("delete", "namespace", TENANT_NAMESPACE, "--ignore-not-found", "--timeout=120s",
            timeout=150)


def _start_registry(cluster: KindCluster, registry: ContainerRegistry) -> str:
    """Start the registry, make the node trust it, push the tenant image; return its reference."""
    registry.start()
    trust_registry(cluster.name, registry.address, registry.ca_file)
    with tempfile.TemporaryDirectory(prefix="regcred-tenant-") as folder:
        program = build_tenant_program(Path(folder) / "tenant-app")
        image = registry.push_program("tenants/app", "v1", program)
    print(f"registry {registry.address} (container {registry.name} on network {cluster.network})")
    print(f"pushed {image}; anonymous pulls get 401, user {registry.username!r} may pull")
    return image


class TenantDemo:
    """The tenant namespace, its Deployment and the credential that lets it pull."""

    def __init__(self, kubectl: Kubectl, registry: ContainerRegistry) -> None:
        self.kubectl = kubectl
        self.registry = registry

    def show_pull_failure(self, image: str) -> None:
        """Create the namespace and Deployment; print the failing Pod and its 401 event."""
        key, value = TENANT_LABEL
        self.kubectl("create", "namespace", TENANT_NAMESPACE)
        self.kubectl("label", "namespace", TENANT_NAMESPACE, f"{key}={value}")
        # Pods may be created only once the namespace's default ServiceAccount exists.
        self.kubectl("wait", "--for=create", "serviceaccount/default",
                     "--namespace", TENANT_NAMESPACE, "--timeout=60s", timeout=90)
        # Always: a kept node that pulled the image before must still ask the registry.
        self._apply(deployment(image, pull_policy="Always"))
        print(f"namespace {TENANT_NAMESPACE} ({key}={value}): deployment/{APP} of {image}")
        stuck = wait_for(lambda: self._pod(waiting_in=PULL_FAILURES), PULL_SECONDS,
                          "the tenant Pod to fail its pull")
        event = wait_for(lambda: self._event(stuck, "Failed", "401"), PULL_SECONDS,
                          "the pull failure's event")
        print(self._pods(), end="")
        print(f"event on pod/{stuck}: Failed: {event}")

    def show_recovery(self) -> None:
        """Apply the source Secret and a RegistryCredential; print the recovered Pod."""
        self._apply(source_secret(self.registry.password))
        self._apply(registry_credential(self.registry.address, self.registry.username))
        print(f"applied secret {OPERATOR_NAMESPACE}/{SOURCE_SECRET} and registrycredential/"
              f"{CREDENTIAL} (selects {'='.join(TENANT_LABEL)}, restartStuckPods: true)")
        running = wait_for(lambda: self._pod(running=True), PULL_SECONDS,
                            "the operator to restart the stuck Pod, and the new one to run")
        pulled = wait_for(lambda: self._event(running, "Pulled", ""), 60, "the Pulled event")
        print(self._pods(), end="")
        secrets = self.kubectl("get", "pod", running, "--namespace", TENANT_NAMESPACE,
                               "--output", "jsonpath={.spec.imagePullSecrets[*].name}")
        print(f"pod/{running} imagePullSecrets: {secrets}")
        print(f"event on pod/{running}: Pulled: {pulled}")
        print(self.kubectl(
            "get", "events", "--namespace", TENANT_NAMESPACE,
            "--field-selector", "reason=RestartedStuckPod",
            "--output", "custom-columns=OBJECT:.involvedObject.name,REASON:.reason,MESSAGE:.message",
        ), end="")
        print(self.kubectl("logs", running, "--namespace", TENANT_NAMESPACE), end="")
        print(self.kubectl("get", "registrycredential", CREDENTIAL), end="")

    def _apply(self, manifest: dict[str, Any]) -> None:
        self.kubectl("apply", "--filename", "-", stdin=json.dumps(manifest))

    def _pods(self) -> str:
        return self.kubectl("get", "pods", "--namespace", TENANT_NAMESPACE, "--selector", f"app={APP}")

    def _pod(self, waiting_in: tuple[str, ...] = (), running: bool = False) -> str:
        """The name of a live app Pod waiting for one of `waiting_in`, or running and ready."""
        pods = self.kubectl.json("get", "pods", "--namespace", TENANT_NAMESPACE,
                                 "--selector", f"app={APP}")["items"]
        for pod in pods:
            if pod["metadata"].get("deletionTimestamp"):
                continue
            statuses = pod.get("status", {}).get("containerStatuses", [])
            reasons = [status.get("state", {}).get("waiting", {}).get("reason") for status in statuses]
            ready = bool(statuses) and all(status.get("ready") for status in statuses)
            if (running and ready) or any(reason in waiting_in for reason in reasons):
                return str(pod["metadata"]["name"])
        return ""

    def _event(self, pod: str, reason: str, contains: str) -> str:
        """The message of the Pod's latest `reason` event that holds `contains`, or ""."""
        events = self.kubectl.json(
            "get", "events", "--namespace", TENANT_NAMESPACE,
            "--field-selector", f"involvedObject.name={pod},reason={reason}",
        )["items"]
        messages = [str(event.get("message", "")) for event in events]
        return next((message for message in reversed(messages) if contains in message), "")


def deployment(image: str, pull_policy: str) -> dict[str, Any]:
    """One replica of `image`, the way a tenant would deploy it (no pull secret of its own)."""
    labels = {"app": APP}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": APP, "namespace": TENANT_NAMESPACE},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": APP, "image": image, "imagePullPolicy": pull_policy}],
                },
            },
        },
    }


def source_secret(password: str) -> dict[str, Any]:
    """The registry password, in the operator's namespace (the default source namespace)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SOURCE_SECRET, "namespace": OPERATOR_NAMESPACE},
        "stringData": {"password": password},
    }


def registry_credential(server: str, username: str) -> dict[str, Any]:
    """A RegistryCredential for the tenant label that restarts Pods stuck without it."""
    key, value = TENANT_LABEL
    return {
        "apiVersion": "regcred.dev/v1alpha1",
        "kind": "RegistryCredential",
        "metadata": {"name": CREDENTIAL},
        "spec": {
            "registries": [
                {"server": server, "username": username, "passwordSecretRef": {"name": SOURCE_SECRET}}
            ],
            "namespaceSelector": {"matchLabels": {key: value}},
            "secretName": PULL_SECRET,
            "restartStuckPods": True,
        },
    }


def _announce(cluster: KindCluster, registry: ContainerRegistry) -> None:
    print(f"\nready: kubeconfig={cluster.kubeconfig}")
    print(f"Try (export KUBECONFIG={cluster.kubeconfig}):")
    print(f"  kubectl get registrycredential {CREDENTIAL} -o yaml")
    print(f"  kubectl -n {TENANT_NAMESPACE} get pods,events")
    print(f"  kubectl create namespace late && kubectl label namespace late "
          f"{'='.join(TENANT_LABEL)}   # gets {PULL_SECRET} at once")
    print(f"Registry {registry.address} runs in container {registry.name}.")
    print("Press Ctrl-C to stop.", flush=True)


def _clean_up(settings: DemoSettings, registry: ContainerRegistry | None) -> None:
    if settings.keep:
        print(f"\nkept: kind cluster {settings.name}"
              + (f" and registry container {registry.name}" if registry else "")
              + f"; remove with: regcred-dev kind down --name {settings.name}"
              + (f" && docker rm --force {registry.name}" if registry else ""), flush=True)
        return
    print(f"\ncleaning up: deleting kind cluster {settings.name} and its registry", flush=True)
    if registry is not None:
        registry.stop()
    delete_cluster(settings.name)
