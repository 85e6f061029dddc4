"""A private registry that this machine and the kind node reach by the same name.

A release pushes from this machine and the node pulls what it pushed, by the same
reference (the chart names the image it was released with). The registry runs in a
container on the cluster's network, as the tests' other registry does, listening on
port P, published on this machine's 127.0.0.1:P only. Inside the node, a socat bound to
the node's own 127.0.0.1:P forwards to the container, so ``127.0.0.1:P/...`` means the
same registry to both; the serving certificate covers 127.0.0.1.
"""

from __future__ import annotations

from pathlib import Path

from regcred_dev.controlplane.runner import free_port
from regcred_dev.kind.cluster import CERTS_D, certs_d_folder, trust_registry
from regcred_dev.kind.docker import run_docker
from regcred_dev.kind.registry import (
    CRANE_IN_CONTAINER,
    EMPTY_IMAGE,
    REGISTRY_IN_CONTAINER,
    ContainerRegistry,
)

__all__ = ["PublishedRegistry"]


class PublishedRegistry(ContainerRegistry):
    """`ContainerRegistry` at ``127.0.0.1:P`` for this machine and for `node`'s containerd."""

    def __init__(self, name: str, network: str, node: str, cluster: str, **binaries: Path) -> None:
        super().__init__(name, network, **binaries)
        self.node = node
        self.cluster = cluster
        self.port = 0
        self._forwarder_pid = ""

    def start(self) -> None:
        super().start()
        try:
            # The node's containerd trusts the CA for this address from its next pull on.
            trust_registry(self.cluster, self.address, self.ca_file)
            # containerd speaks plain HTTP to a 127.0.0.1 registry unless told otherwise.
            hosts = certs_d_folder(self.cluster) / self.address / "hosts.toml"
            hosts.write_text(
                f'server = "https://{self.address}"\n\n'
                f'[host."https://{self.address}"]\n'
                '  capabilities = ["pull", "resolve"]\n'
                f'  ca = "{CERTS_D}/{self.address}/ca.crt"\n'
            )
            self._forwarder_pid = run_docker([
                "exec", self.node, "sh", "-c",
                f"socat TCP-LISTEN:{self.port},bind=127.0.0.1,fork,reuseaddr "
                f"TCP:{self.name}:{self.port} >/dev/null 2>&1 & echo $!",
            ]).strip()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self._forwarder_pid:
            run_docker(["exec", self.node, "kill", self._forwarder_pid], check=False)
            self._forwarder_pid = ""
        super().stop()

    def _next_address(self) -> str:
        self.port = free_port()
        return f"127.0.0.1:{self.port}"

    def _listen_address(self) -> str:
        return f":{self.port}"

    def _spawn(self, registry_bin: Path, config: Path) -> None:
        workdir = str(self.workdir)
        run_docker([
            "run", "--detach", "--name", self.name, "--network", self.network,
            "--publish", f"127.0.0.1:{self.port}:{self.port}",
            "--volume", f"{workdir}:{workdir}",
            "--volume", f"{registry_bin}:{REGISTRY_IN_CONTAINER}:ro",
            "--volume", f"{self.crane_bin}:{CRANE_IN_CONTAINER}:ro",
            "--env", "OTEL_TRACES_EXPORTER=none",
            EMPTY_IMAGE, REGISTRY_IN_CONTAINER, "serve", str(config),
        ])
