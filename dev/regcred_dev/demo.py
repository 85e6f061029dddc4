"""`regcred-dev demo` (`make demo`): the operator on a local control plane with the example manifests.

Starts a control plane, installs the CRD, runs the operator in-process, applies
`examples/`, prints what got synced, and keeps everything running until Ctrl-C
so you can poke at it with kubectl.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from regcred.config import OperatorConfig
from regcred.handlers.runner import OperatorThread
from regcred_dev.controlplane.kubectl import Kubectl, wait_for
from regcred_dev.controlplane.runner import LocalControlPlane

__all__ = ["run_demo"]

log = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 60.0


def _kubectl(control_plane: LocalControlPlane, *args: str) -> str:
    return Kubectl(control_plane.kubectl, control_plane.kubeconfig)(*args)


def _wait_until_ready(control_plane: LocalControlPlane, name: str) -> None:
    def ready() -> bool:
        return _kubectl(
            control_plane, "get", "registrycredential", name,
            "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
        ) == "True"

    wait_for(ready, READY_TIMEOUT_SECONDS, f"RegistryCredential {name} to become Ready", 0.5)


def run_demo(crds: Path, examples: Path, kubeconfig: Path | None = None) -> None:
    """Run the demo until interrupted."""
    with LocalControlPlane(kubeconfig_path=kubeconfig) as control_plane:
        _kubectl(control_plane, "apply", "--server-side", "-k", str(crds))
        _kubectl(control_plane, "wait", "--for=condition=Established", "crd", "-l",
                 "app.kubernetes.io/part-of=regcred-operator", "--timeout=60s")
        _kubectl(control_plane, "apply", "-f", str(examples / "00-operator-namespace.yaml"))
        with OperatorThread(OperatorConfig(), kubeconfig=str(control_plane.kubeconfig)):
            _kubectl(control_plane, "apply", "-f", str(examples))
            _wait_until_ready(control_plane, "acme")
            print(_kubectl(control_plane, "get", "registrycredentials"))
            print(_kubectl(
                control_plane, "get", "secrets", "-A", "-l", "app.kubernetes.io/managed-by=regcred-operator",
            ))
            print(_kubectl(
                control_plane, "get", "serviceaccounts", "-A", "--field-selector", "metadata.name=default",
                "-o", "custom-columns=NAMESPACE:.metadata.namespace,IMAGE-PULL-SECRETS:.imagePullSecrets[*].name",
            ))
            print(f"ready: kubeconfig={control_plane.kubeconfig}")
            print("Try: kubectl --kubeconfig <that file> label namespace other-tenant tenant=acme --overwrite")
            print("Press Ctrl-C to stop.", flush=True)
            while True:
                time.sleep(1)
                control_plane.check_alive()
