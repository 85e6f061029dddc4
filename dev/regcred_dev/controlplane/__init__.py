"""A real Kubernetes control plane built from source and run as local processes."""

from regcred_dev.controlplane.build import (
    ETCD_VERSION,
    KUBERNETES_VERSION,
    BuildError,
    ensure_binaries,
)
from regcred_dev.controlplane.kubectl import Kubectl, KubectlError, wait_for
from regcred_dev.controlplane.runner import ControlPlaneError, LocalControlPlane

__all__ = [
    "ETCD_VERSION",
    "KUBERNETES_VERSION",
    "BuildError",
    "ControlPlaneError",
    "Kubectl",
    "KubectlError",
    "LocalControlPlane",
    "ensure_binaries",
    "wait_for",
]
