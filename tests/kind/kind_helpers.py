"""Small helpers for the kind tier's Pods."""

from __future__ import annotations

import time
from typing import Any

from regcred_dev.controlplane import Kubectl

__all__ = ["TRUSTED_CA_TEXT", "TRUSTED_REGISTRY", "Kubectl", "pod_manifest", "wait_for_pod_phase"]

# The session cluster's node trusts this (dummy) CA for this registry.
TRUSTED_REGISTRY = "registry.regcred-test.invalid:5000"
TRUSTED_CA_TEXT = "-----BEGIN CERTIFICATE-----\nregcred kind tier\n-----END CERTIFICATE-----\n"


def pod_manifest(name: str, image: str, command: list[str] | None) -> dict[str, Any]:
    """A Pod that runs once, of a local image (never pulled)."""
    container: dict[str, Any] = {"name": name, "image": image, "imagePullPolicy": "Never"}
    if command is not None:
        container["command"] = command
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [container]},
    }


def wait_for_pod_phase(
    kubectl: Kubectl, namespace: str, name: str, phases: set[str], timeout: float = 180
) -> str:
    """Wait until the Pod is in one of `phases`; return the phase."""
    deadline = time.monotonic() + timeout
    phase = ""
    while time.monotonic() < deadline:
        pod = kubectl.json("get", "pod", name, "--namespace", namespace)
        phase = pod["status"].get("phase", "")
        if phase in phases:
            return phase
        time.sleep(1)
    raise AssertionError(
        f"pod {namespace}/{name} still {phase!r} after {timeout} s: {pod['status']}"
    )
