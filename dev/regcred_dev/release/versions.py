"""Where a checkout states its version, read without running anything.

One release has one version: the package's ``__version__``, the chart's ``version``
and ``appVersion``, the kustomize base's image tag and the newest CHANGELOG.md entry
must all say it, and so must the image tag and the packaged chart a release makes from
them. `version_places` reads every place; `disagreements` names those that differ.
`check_release_version` is what a release checks first. Pure: it reads files and
parses text, nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = [
    "CHANGELOG",
    "CHART_FILE",
    "IMAGE_NAME",
    "KUSTOMIZATION",
    "PACKAGE_INIT",
    "VERSION_PATTERN",
    "ReleaseError",
    "VersionPlace",
    "changelog_versions",
    "check_release_version",
    "disagreements",
    "release_notes",
    "version_places",
]

PACKAGE_INIT = Path("operator/regcred/__init__.py")
CHART_FILE = Path("deploy/chart/Chart.yaml")
KUSTOMIZATION = Path("deploy/base/kustomization.yaml")
CHANGELOG = Path("CHANGELOG.md")
# The image every manifest names; a release pushes REGISTRY/regcred-operator.
IMAGE_NAME = "ghcr.io/regcred/regcred-operator"

# X.Y.Z only: the same string is a valid semver (Helm, image tags) and PEP 440 version,
# which a pre-release suffix would not be (0.2.0-rc.1 vs 0.2.0rc1).
VERSION_PATTERN = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
_DUNDER_VERSION = re.compile(r"^__version__\s*=\s*[\"']([^\"']+)[\"']", re.MULTILINE)
# "## [0.1.0] - 2026-11-25" or "## 0.1.0 (2026-11-25)"; "## [Unreleased]" is skipped.
_CHANGELOG_HEADING = re.compile(r"^## \[?(\d+\.\d+\.\d+)\]?", re.MULTILINE)


class ReleaseError(RuntimeError):
    """A release step failed, or the checkout is not ready to be released."""


@dataclass(frozen=True)
class VersionPlace:
    """One statement of the version: which file, what in it, and what it says."""

    path: Path
    field: str
    value: str

    def __str__(self) -> str:
        return f"{self.path} ({self.field}): {self.value or '(none)'}"


def version_places(source: Path) -> list[VersionPlace]:
    """Every place in checkout `source` that states the release version."""
    chart = yaml.safe_load((source / CHART_FILE).read_text())
    places = [
        VersionPlace(PACKAGE_INIT, "__version__", _package_version(source / PACKAGE_INIT)),
        VersionPlace(CHART_FILE, "version", str(chart.get("version", ""))),
        VersionPlace(CHART_FILE, "appVersion", str(chart.get("appVersion", ""))),
        VersionPlace(
            KUSTOMIZATION, f"images[{IMAGE_NAME}].newTag", _kustomize_tag(source / KUSTOMIZATION)
        ),
    ]
    released = changelog_versions((source / CHANGELOG).read_text())
    places.append(VersionPlace(CHANGELOG, "newest entry", released[0] if released else ""))
    return places


def disagreements(version: str, places: list[VersionPlace]) -> list[VersionPlace]:
    """The places that do not say `version`."""
    return [place for place in places if place.value != version]


def check_release_version(version: str, source: Path) -> None:
    """Refuse (`ReleaseError`) a version that is not X.Y.Z, that a version place of
    checkout `source` disagrees with, or that CHANGELOG.md has no notes for."""
    if not VERSION_PATTERN.match(version):
        raise ReleaseError(f"VERSION={version!r} is not X.Y.Z (digits only, no 'v' and no suffix)")
    differing = disagreements(version, version_places(source))
    if differing:
        listed = "\n".join(f"  {place}" for place in differing)
        raise ReleaseError(
            f"the checkout does not say {version} everywhere; change these first:\n{listed}"
        )
    try:
        release_notes((source / CHANGELOG).read_text(), version)
    except LookupError as error:
        raise ReleaseError(str(error)) from None


def changelog_versions(text: str) -> list[str]:
    """The versions CHANGELOG.md has entries for, newest (topmost) first."""
    return _CHANGELOG_HEADING.findall(text)


def _package_version(init_file: Path) -> str:
    match = _DUNDER_VERSION.search(init_file.read_text())
    return match.group(1) if match else ""


def _kustomize_tag(kustomization: Path) -> str:
    document = yaml.safe_load(kustomization.read_text())
    for image in document.get("images", []):
        if image.get("name") == IMAGE_NAME:
            return str(image.get("newTag", ""))
    return ""


def release_notes(text: str, version: str) -> str:
    """The body of CHANGELOG.md's entry for `version` (heading excluded), stripped.

    Raises LookupError when there is no such entry: a release without notes is refused.
    """
    headings = list(re.finditer(r"^## .*$", text, re.MULTILINE))
    for index, heading in enumerate(headings):
        match = _CHANGELOG_HEADING.match(heading.group(0))
        if match and match.group(1) == version:
            end = headings[index + 1].start() if index + 1 < len(headings) else len(text)
            # Link definitions ("[0.1.0]: https://...") at the end belong to no entry.
            body = re.split(r"^\[[^\]]+\]: ", text[heading.end() : end], flags=re.MULTILINE)[0]
            return body.strip()
    raise LookupError(f"{CHANGELOG} has no entry for {version}: add a '## [{version}]' section")
