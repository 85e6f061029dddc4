"""A kind cluster on hosts without a registry: pinned kind, a locally made node image.

Dev tooling beside `regcred_dev.controlplane`: it shells out to docker, kind and kubectl
and imports neither kopf nor the Kubernetes client. Also here: a private registry
(`RegistryServer`, `ContainerRegistry`) for the kind demo and the tests, and the
pinned Go tools it runs (`GoTool`).
"""

from regcred_dev.kind.cluster import (
    KindCluster,
    KindError,
    cluster_exists,
    create_cluster,
    delete_cluster,
    kind_config,
    load_image,
)
from regcred_dev.kind.debian import (
    PYTHON_BASE_RECIPE,
    DebianImageRecipe,
    ensure_debian_image,
    ensure_python_base_image,
)
from regcred_dev.kind.docker import DockerError, engine_reachable
from regcred_dev.kind.gotools import GoTool
from regcred_dev.kind.node import (
    KIND_VERSION,
    NodeImage,
    ensure_kind,
    ensure_node_image,
)
from regcred_dev.kind.quirks import HostQuirks
from regcred_dev.kind.registry import ContainerRegistry, RegistryError, RegistryServer
from regcred_dev.kind.tenant import build_tenant_program

__all__ = [
    "KIND_VERSION",
    "PYTHON_BASE_RECIPE",
    "ContainerRegistry",
    "DebianImageRecipe",
    "DockerError",
    "GoTool",
    "HostQuirks",
    "KindCluster",
    "KindError",
    "NodeImage",
    "RegistryError",
    "RegistryServer",
    "build_tenant_program",
    "cluster_exists",
    "create_cluster",
    "delete_cluster",
    "engine_reachable",
    "ensure_debian_image",
    "ensure_kind",
    "ensure_node_image",
    "ensure_python_base_image",
    "kind_config",
    "load_image",
]
