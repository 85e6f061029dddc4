"""Unit tests run no server; a few ask the pinned kubectl how it reads or builds things."""

from __future__ import annotations

from pathlib import Path

import pytest

from regcred_dev.controlplane.build import find_binaries


@pytest.fixture(scope="session")
def kubectl() -> Path:
    """The pinned kubectl, used offline; the tests that need it skip until it is built."""
    folder = find_binaries()
    if folder is None:
        pytest.skip("kubectl is not built yet: run `regcred-dev cluster build` (make test does)")
    return folder / "kubectl"
