"""The built image, run as deploy/base/deployment.yaml runs it, serves a real API server.

Same args, same user and group, read-only root filesystem, no capabilities, /tmp the
only writable folder, and no passwd entry for the user: the two ways the shipped
Deployment once crash-looped (`regcred run run`, and kopf asking getpass for a user
name that uid 65532 does not have) both fail here. Only the health and metrics
addresses are added, so that they listen on 127.0.0.1 of this machine.
"""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from dockerfile import DOCKERFILE
from objects import replica, tenant_spec

from regcred_dev.controlplane.runner import free_port
from regcred_dev.kind.operator_image import buildkit_client

DEPLOYMENT = DOCKERFILE.parent / "deploy" / "base" / "deployment.yaml"
KUBECONFIG_IN_CONTAINER = "/var/run/regcred/kubeconfig"


def docker_run_flags(pod_spec: dict[str, Any]) -> list[str]:
    """`docker run` flags for the pod's (single) container as the kubelet would run it."""
    (container,) = pod_spec["containers"]
    pod_security = pod_spec["securityContext"]
    security = container["securityContext"]
    flags = ["--user", f"{pod_security['runAsUser']}:{pod_security['runAsGroup']}"]
    if security.get("readOnlyRootFilesystem"):
        flags.append("--read-only")
    if not security.get("allowPrivilegeEscalation", True):
        flags += ["--security-opt", "no-new-privileges"]
    flags += [f"--cap-drop={capability}" for capability in security["capabilities"]["drop"]]
    empty_dirs = {volume["name"] for volume in pod_spec["volumes"] if "emptyDir" in volume}
    flags += [
        f"--tmpfs={mount['mountPath']}"
        for mount in container["volumeMounts"]
        if mount["name"] in empty_dirs
    ]
    return flags


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


@dataclass(frozen=True)
class RunningContainer:
    docker: str
    name: str
    health_url: str

    def running(self) -> bool:
        state = self._docker("inspect", "--format", "{{.State.Running}}", self.name)
        return state.strip() == "true"

    def logs(self) -> str:
        return self._docker("logs", self.name)

    def _docker(self, *args: str) -> str:
        result = subprocess.run(
            [self.docker, *args], capture_output=True, text=True, timeout=30, check=False
        )
        return result.stdout + result.stderr


@pytest.fixture
def deployed_container(
    operator_image: str, operator_identity, running_operator, credentials, sources
):
    """The image running as deploy/'s ServiceAccount; the in-process operator paused meanwhile.

    Set up after (so torn down before) the object fixtures, whose cleanup the
    in-process operator then does alone.
    """
    running_operator.stop()
    pod_spec = yaml.safe_load(DEPLOYMENT.read_text())["spec"]["template"]["spec"]
    (container,) = pod_spec["containers"]
    health = free_port()
    name = f"regcred-image-test-{uuid.uuid4().hex[:8]}"
    docker = buildkit_client()
    subprocess.run(
        [
            docker, "run", "--detach", "--name", name,
            # The local control plane listens on 127.0.0.1 of this machine only.
            "--network", "host",
            *docker_run_flags(pod_spec),
            "--volume", f"{operator_identity.kubeconfig.resolve()}:{KUBECONFIG_IN_CONTAINER}:ro",
            "--env", f"KUBECONFIG={KUBECONFIG_IN_CONTAINER}",
            "--env", f"POD_NAMESPACE={operator_identity.namespace}",
            operator_image,
            *container["args"],
            "--health-address", f"127.0.0.1:{health}",
            "--metrics-address", f"127.0.0.1:{free_port()}",
        ],
        check=True, capture_output=True, text=True, timeout=60,
    )

    started = RunningContainer(docker, name, f"http://127.0.0.1:{health}")
    try:
        yield started
    finally:
        subprocess.run([docker, "rm", "--force", name], capture_output=True, timeout=60, check=False)


def test_the_image_serves_as_the_deployment_runs_it(
    cluster, make_namespace, credentials, sources, deployed_container, wait_for
):
    tenant = uuid.uuid4().hex[:8]
    namespace = make_namespace("image", labels={"tenant": tenant})
    password = f"pw-{uuid.uuid4().hex}"
    source = sources.create({"password": password})
    credentials.create(tenant_spec(tenant, source, secretName="image-pull"))

    def served() -> bool:
        # A container that exited never serves: fail at once, with what it printed.
        assert deployed_container.running(), deployed_container.logs()
        return replica(cluster, namespace, "image-pull") is not None

    wait_for(served, timeout=90, what="the replica written by the container")
    assert http_status(f"{deployed_container.health_url}/healthz") == 200
    assert http_status(f"{deployed_container.health_url}/readyz") == 200
    assert password not in deployed_container.logs()
