"""The plugin's YAML reads back the same in PyYAML and in kubectl (whose reader takes 1e5 for a number)."""

from __future__ import annotations

import pytest
import yaml

from regcred.plugin import ManifestDumper


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("1e5", True),
        ("123e4567", True),
        ("-12E+3", True),
        ("1.5e3", True),
        ("0o17", True),
        ("12345678", True),  # PyYAML's own quoting, kept
        ("true", True),
        ("e5", False),
        ("1e", False),
        ("team-frontend", False),
        ("v1.2", False),
        ("registry.acme.example:5000", False),
    ],
)
def test_strings_kubectl_would_read_as_numbers_are_quoted(value, quoted):
    text = yaml.dump({"tenant": value}, Dumper=ManifestDumper)
    assert text.strip() == (f"tenant: '{value}'" if quoted else f"tenant: {value}")
    assert yaml.safe_load(text) == {"tenant": value}
