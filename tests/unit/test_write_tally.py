"""A credential's writes are summed up in one INFO line once reported, then counted anew."""

from __future__ import annotations

import logging

import pytest

from regcred.controller.apply import WriteTally

WRITES = [
    ("acme", "create", "secrets"),
    ("acme", "create", "secrets"),
    ("acme", "patch", "serviceaccounts"),
    ("other", "delete", "secrets"),
]


def summaries(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, int]]:
    return [(record.credential, record.getMessage(), record.levelno) for record in caplog.records]  # type: ignore[attr-defined]


def test_one_line_per_credential_with_its_counts(caplog: pytest.LogCaptureFixture) -> None:
    tally = WriteTally()
    for credential, verb, resource in WRITES:
        tally.add(credential, verb, resource)
    with caplog.at_level(logging.INFO, logger="regcred.controller.apply"):
        tally.report("acme")
        tally.report("acme")  # nothing since the last report: no line
        tally.report("other")
        tally.report("never-wrote")
    assert summaries(caplog) == [
        ("acme", "acme wrote: create 2 secrets, patch 1 serviceaccounts", logging.INFO),
        ("other", "other wrote: delete 1 secrets", logging.INFO),
    ]
