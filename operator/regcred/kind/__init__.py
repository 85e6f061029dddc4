"""A kind cluster on hosts without a registry: pinned kind, a locally made node image.

Dev tooling beside `regcred.controlplane`: it shells out to docker, kind and kubectl
and imports neither kopf nor the Kubernetes client.
"""

from regcred.kind.cluster import (
    KindCluster,
    KindError,
    cluster_exists,
    create_cluster,
    delete_cluster,
    kind_config,
    load_image,
)
from regcred.kind.debian import (
    PYTHON_BASE_RECIPE,
    DebianImageRecipe,
    ensure_debian_image,
    ensure_python_base_image,
)
from regcred.kind.docker import DockerError, engine_reachable
from regcred.kind.node import (
    KIND_VERSION,
    NodeImage,
    ensure_kind,
    ensure_node_image,
)
from regcred.kind.quirks import HostQuirks

__all__ = [
    "KIND_VERSION",
    "PYTHON_BASE_RECIPE",
    "DebianImageRecipe",
    "DockerError",
    "HostQuirks",
    "KindCluster",
    "KindError",
    "NodeImage",
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
