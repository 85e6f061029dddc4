"""Releases: every artifact of one version from one command (`make release`).

Dev tooling beside `regcred_dev.kind`: it shells out to docker, crane, helm, cosign and syft
(pinned `GoTool`s, `regcred_dev.release.tools`) and imports neither kopf nor the Kubernetes
client. `regcred_dev.release.versions` reads where the checkout states its version.
"""

from regcred_dev.release.pipeline import (
    CHART_NAME,
    IMAGE_NAME,
    Endpoint,
    ReleaseRecord,
    ReleaseSettings,
    build_python_distributions,
    cosign_verify_command,
    make_release,
    verify_commands,
)
from regcred_dev.release.versions import (
    ReleaseError,
    VersionPlace,
    check_release_version,
    disagreements,
    release_notes,
    version_places,
)

__all__ = [
    "CHART_NAME",
    "IMAGE_NAME",
    "Endpoint",
    "ReleaseError",
    "ReleaseRecord",
    "ReleaseSettings",
    "VersionPlace",
    "build_python_distributions",
    "check_release_version",
    "cosign_verify_command",
    "disagreements",
    "make_release",
    "release_notes",
    "verify_commands",
    "version_places",
]
