"""Releases: every artifact of one version from one command (`make release`).

`regcred.release.versions` reads where the checkout states its version.
"""

from regcred.release.versions import (
    ReleaseError,
    VersionPlace,
    check_release_version,
    disagreements,
    release_notes,
    version_places,
)

__all__ = [
    "ReleaseError",
    "VersionPlace",
    "check_release_version",
    "disagreements",
    "release_notes",
    "version_places",
]
