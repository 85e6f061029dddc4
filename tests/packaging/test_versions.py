"""One version everywhere: the package, the chart, the kustomize image tag, CHANGELOG.md
and the docs' examples say the same X.Y.Z, and a drift in any one of them is caught.

What a release makes from them (the image's tag and label, the packaged chart) is
checked where a release is made: tests/kind/test_release.py.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import regcred
from regcred_dev.release import ReleaseError, check_release_version, disagreements, version_places
from regcred_dev.release.versions import (
    CHANGELOG,
    CHART_FILE,
    KUSTOMIZATION,
    PACKAGE_INIT,
    changelog_versions,
    release_notes,
)

REPO = Path(__file__).resolve().parents[2]
VERSION = regcred.__version__
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# What names a concrete release in prose: an image tag, a chart version, a release folder.
VERSION_MENTIONS = [
    re.compile(r"regcred-operator:(\d+\.\d+\.\d+)\b"),
    re.compile(r"--version[ =](\d+\.\d+\.\d+)\b"),
    re.compile(r"VERSION=(\d+\.\d+\.\d+)\b"),
    re.compile(r"regcred-operator-(\d+\.\d+\.\d+)\b"),
]


def test_every_version_place_says_the_package_version() -> None:
    places = version_places(REPO)
    assert {(place.path, place.field) for place in places} >= {
        (PACKAGE_INIT, "__version__"),
        (CHART_FILE, "version"),
        (CHART_FILE, "appVersion"),
        (CHANGELOG, "newest entry"),
    }
    assert disagreements(VERSION, places) == []
    check_release_version(VERSION, REPO)  # what `make release VERSION=...` checks first


def test_the_docs_show_only_the_current_version() -> None:
    for document in DOCS:
        text = document.read_text()
        for pattern in VERSION_MENTIONS:
            for found in pattern.findall(text):
                assert found == VERSION, f"{document.relative_to(REPO)} shows {found}, not {VERSION}"


def _set_init(tree: Path) -> None:
    path = tree / PACKAGE_INIT
    path.write_text(path.read_text().replace(f'"{VERSION}"', '"9.9.9"'))


def _set_chart_field(field: str) -> Callable[[Path], None]:
    def edit(tree: Path) -> None:
        path = tree / CHART_FILE
        text = path.read_text()
        line = re.search(rf"^{field}: .*$", text, re.MULTILINE)
        assert line is not None
        path.write_text(text.replace(line.group(0), f"{field}: 9.9.9"))

    return edit


def _set_kustomize_tag(tree: Path) -> None:
    path = tree / KUSTOMIZATION
    path.write_text(path.read_text().replace(f"newTag: {VERSION}", "newTag: 9.9.9"))


def _add_changelog_entry(tree: Path) -> None:
    path = tree / CHANGELOG
    path.write_text(path.read_text().replace(f"## [{VERSION}]", f"## [9.9.9] - soon\n\n- x\n\n## [{VERSION}]", 1))


@pytest.mark.parametrize(
    ("edit", "drifted"),
    [
        (_set_init, (PACKAGE_INIT, "__version__")),
        (_set_chart_field("version"), (CHART_FILE, "version")),
        (_set_chart_field("appVersion"), (CHART_FILE, "appVersion")),
        (_set_kustomize_tag, (KUSTOMIZATION, "images[ghcr.io/regcred/regcred-operator].newTag")),
        (_add_changelog_entry, (CHANGELOG, "newest entry")),
    ],
    ids=["package", "chart-version", "chart-appVersion", "kustomize-tag", "changelog"],
)
def test_a_drift_in_one_place_is_named_and_refused(
    tmp_path: Path, edit: Callable[[Path], None], drifted: tuple[Path, str]
) -> None:
    tree = tmp_path / "checkout"
    for relative in (PACKAGE_INIT, CHART_FILE, KUSTOMIZATION, CHANGELOG):
        (tree / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / relative, tree / relative)
    edit(tree)

    found = disagreements(VERSION, version_places(tree))

    assert [(place.path, place.field) for place in found] == [drifted]
    assert found[0].value == "9.9.9"
    with pytest.raises(ReleaseError, match=re.escape(str(drifted[0]))):
        check_release_version(VERSION, tree)


@pytest.mark.parametrize("version", ["v0.1.0", "0.1", "0.1.0-rc.1", "0.1.0rc1", "01.2.3", ""])
def test_a_version_that_is_not_x_y_z_is_refused(version: str) -> None:
    with pytest.raises(ReleaseError, match="not X.Y.Z"):
        check_release_version(version, REPO)


CHANGELOG_TEXT = """# Changelog

Intro.

## [Unreleased]

- next

## [0.2.0] - 2026-12-01

- two
  continued

## 0.1.0 (2026-11-01)

- one

[0.2.0]: https://example.invalid/compare/v0.1.0...v0.2.0
"""


def test_changelog_versions_are_read_newest_first_skipping_unreleased() -> None:
    assert changelog_versions(CHANGELOG_TEXT) == ["0.2.0", "0.1.0"]


@pytest.mark.parametrize(
    ("version", "notes"),
    [("0.2.0", "- two\n  continued"), ("0.1.0", "- one")],
)
def test_release_notes_are_the_entry_body(version: str, notes: str) -> None:
    assert release_notes(CHANGELOG_TEXT, version) == notes


def test_a_version_without_notes_is_refused() -> None:
    with pytest.raises(LookupError, match=r"## \[0\.3\.0\]"):
        release_notes(CHANGELOG_TEXT, "0.3.0")
