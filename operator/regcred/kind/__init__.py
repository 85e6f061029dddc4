"""A kind cluster on hosts without a registry: pinned kind, a locally made node image.

Dev tooling beside `regcred.controlplane`: it shells out to docker, kind and kubectl
and imports neither kopf nor the Kubernetes client.
"""

from regcred.kind.debian import (
    PYTHON_BASE_RECIPE,
    DebianImageRecipe,
    ensure_debian_image,
    ensure_python_base_image,
)
from regcred.kind.docker import DockerError, engine_reachable

__all__ = [
    "PYTHON_BASE_RECIPE",
    "DebianImageRecipe",
    "DockerError",
    "engine_reachable",
    "ensure_debian_image",
    "ensure_python_base_image",
]
