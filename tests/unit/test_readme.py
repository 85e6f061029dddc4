"""README.md stays a newcomer's page: its quick starts are marked for the tests that run
them (tests/e2e/test_readme_quickstart.py, tests/kind/test_readme_on_kind.py), and it carries no test
evidence, which belongs in docs/ and CONTRIBUTING.md."""

from __future__ import annotations

import re

from readme_quickstart import IMAGE_PLACEHOLDER, IMAGE_TAG_PLACEHOLDER, README, quickstart_blocks

RUN_BY_THE_TESTS = {
    "kubectl-install",
    "kubectl",
    "multi-tenant-install",
    "multi-tenant-admin",
    "multi-tenant-tenant",
}


def test_the_quick_starts_are_marked_for_the_tests_that_run_them():
    blocks = quickstart_blocks()
    assert RUN_BY_THE_TESTS <= set(blocks)
    assert (
        IMAGE_PLACEHOLDER in blocks["kubectl-install"]
        and IMAGE_TAG_PLACEHOLDER in blocks["kubectl-install"]
    )
    assert f"{IMAGE_PLACEHOLDER}:dev" in blocks["build"], (
        "the image built must be the image installed"
    )


def test_the_readme_cites_no_tests():
    text = README.read_text()
    assert not re.findall(r"tests/|test_\w+", text)


def test_the_readme_installs_no_unpublished_image():
    assert "ghcr.io/regcred/regcred-operator:" not in README.read_text()
