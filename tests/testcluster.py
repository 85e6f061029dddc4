"""The `Cluster` handle the tests use, and a local control plane wrapped in one.

A module of its own (not in conftest.py) so that test folders with fixtures of their
own can import it: pytest imports every conftest.py under the same module name.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kubernetes import client, config

from regcred_dev.controlplane import LocalControlPlane

__all__ = ["EXTERNAL_KUBECONFIG_ENV", "Cluster", "local_cluster"]

EXTERNAL_KUBECONFIG_ENV = "REGCRED_TEST_KUBECONFIG"


@dataclass
class Cluster:
    """A Kubernetes API server for tests, with admin clients."""

    kubeconfig: Path
    api_client: client.ApiClient
    # None when the tests run against an external cluster.
    control_plane: LocalControlPlane | None
    core: client.CoreV1Api = field(init=False)
    rbac: client.RbacAuthorizationV1Api = field(init=False)
    custom: client.CustomObjectsApi = field(init=False)
    apiext: client.ApiextensionsV1Api = field(init=False)
    coordination: client.CoordinationV1Api = field(init=False)

    def __post_init__(self) -> None:
        self.core = client.CoreV1Api(self.api_client)
        self.rbac = client.RbacAuthorizationV1Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)
        self.apiext = client.ApiextensionsV1Api(self.api_client)
        self.coordination = client.CoordinationV1Api(self.api_client)

    @property
    def is_local(self) -> bool:
        """True when the tests started this cluster themselves."""
        return self.control_plane is not None

    def require_local_control_plane(self) -> LocalControlPlane:
        """Return the local control plane, or skip the test on an external cluster."""
        if self.control_plane is None:
            pytest.skip(
                f"needs the local control plane (it restarts kube-apiserver); "
                f"{EXTERNAL_KUBECONFIG_ENV} points at an external cluster"
            )
        return self.control_plane

    def new_api_client(self) -> client.ApiClient:
        """Return a separate admin ApiClient (e.g. to add impersonation headers)."""
        return config.new_client_from_config(config_file=str(self.kubeconfig))


@contextmanager
def local_cluster() -> Iterator[Cluster]:
    """Start a local control plane, yield it as a `Cluster`, stop it on exit."""
    with LocalControlPlane() as control_plane:
        api_client = config.new_client_from_config(config_file=str(control_plane.kubeconfig))
        with api_client:
            yield Cluster(
                kubeconfig=control_plane.kubeconfig,
                api_client=api_client,
                control_plane=control_plane,
            )
