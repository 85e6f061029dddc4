"""The pinned Go commands a release runs: helm, cosign, syft and actionlint.

Each is a `GoTool` (regcred_dev.kind.gotools): built from the Go module proxy through a
wrapper module whose committed go.sum (``modules/NAME/go.sum`` beside this file) checks
every download, cached under ``<regcred cache>/tools/NAME-VERSION/`` so a new pin is a
new folder. ``$REGCRED_<NAME>`` names a binary to use instead of building one.
"""

from __future__ import annotations

from importlib import resources

from regcred_dev.kind.gotools import GoTool
from regcred_dev.kind.registry import CRANE, REGISTRY

__all__ = [
    "ACTIONLINT",
    "COSIGN",
    "CRANE",
    "HELM",
    "REGISTRY",
    "RELEASE_TOOLS",
    "SYFT",
]

_SUMS = resources.files(__package__).joinpath("modules")

HELM_VERSION = "v4.3.1"
COSIGN_VERSION = "v3.1.3"
SYFT_VERSION = "v1.57.1"
ACTIONLINT_VERSION = "v1.7.12"

HELM = GoTool(
    name="helm",
    module="helm.sh/helm/v4",
    version=HELM_VERSION,
    package="helm.sh/helm/v4/cmd/helm",
    sum_file=_SUMS.joinpath("helm", "go.sum"),
    env_override="REGCRED_HELM",
    # Stamped as helm's release build does; `helm version` says v0.0.0 otherwise.
    ldflags=f"-s -w -X helm.sh/helm/v4/internal/version.version={HELM_VERSION}",
)
COSIGN = GoTool(
    name="cosign",
    module="github.com/sigstore/cosign/v3",
    version=COSIGN_VERSION,
    package="github.com/sigstore/cosign/v3/cmd/cosign",
    sum_file=_SUMS.joinpath("cosign", "go.sum"),
    env_override="REGCRED_COSIGN",
    ldflags=f"-s -w -X sigs.k8s.io/release-utils/version.gitVersion={COSIGN_VERSION}",
)
SYFT = GoTool(
    name="syft",
    module="github.com/anchore/syft",
    version=SYFT_VERSION,
    package="github.com/anchore/syft/cmd/syft",
    sum_file=_SUMS.joinpath("syft", "go.sum"),
    env_override="REGCRED_SYFT",
    # The SBOM names its generator with this version ("syft-1.57.1" rather than "[not provided]").
    ldflags=f"-s -w -X main.version={SYFT_VERSION.removeprefix('v')}",
)
ACTIONLINT = GoTool(
    name="actionlint",
    module="github.com/rhysd/actionlint",
    version=ACTIONLINT_VERSION,
    package="github.com/rhysd/actionlint/cmd/actionlint",
    sum_file=_SUMS.joinpath("actionlint", "go.sum"),
    env_override="REGCRED_ACTIONLINT",
    ldflags=f"-s -w -X github.com/rhysd/actionlint.version={ACTIONLINT_VERSION}",
)

# What `make release` needs besides the Docker engine (actionlint only lints the workflow).
RELEASE_TOOLS = (HELM, COSIGN, SYFT, CRANE, REGISTRY)
