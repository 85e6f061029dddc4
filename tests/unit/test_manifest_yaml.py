"""The plugin's YAML reads back the same in PyYAML and in kubectl.

kubectl's reader (goyaml v2) takes 1e5 for a number and y or N for booleans where
PyYAML reads strings; the last tests ask the pinned kubectl itself, not a table of ours.
"""

from __future__ import annotations

import json
import string
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from regcred.plugin import ManifestDumper

# Strings that YAML readers tend to resolve to something else, in some reader or other.
TRICKY_VALUES = [
    "y", "Y", "n", "N", "yes", "No", "on", "OFF", "true", "False", "~", "null", "Null",
    "1e5", "123e4567", "-12E+3", "1.5e3", ".5", "0o17", "0x1F", "0b101", "017", "1_000",
    "12345678", "1:20", ".inf", "-.Inf", ".NaN", "=", "<<", "2026-12-01", "e5", "1e",
    "team-frontend", "v1.2",
]
# Label values: alphanumerics, '-', '_' and '.', up to 63 characters.
LABEL_VALUE = st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=1, max_size=12)


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


def kubectl_reads(kubectl: Path, values: list[str]) -> list[object]:
    """What kubectl makes of each value, dumped as our manifests are, in one ConfigMap."""
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "probe", "namespace": "default"},
        "data": {f"k{index}": value for index, value in enumerate(values)},
    }
    result = subprocess.run(
        # --local: kubectl parses the file as `apply -f` does and prints it; no server.
        [str(kubectl), "annotate", "--local", "--filename=-", "--output=json", "probe=1"],
        input=yaml.dump(manifest, Dumper=ManifestDumper), capture_output=True, text=True,
        env={"HOME": "/nonexistent"}, timeout=30, check=False,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)["data"]
    return [data[f"k{index}"] for index in range(len(values))]


def test_kubectl_reads_every_tricky_string_back_as_the_same_string(kubectl: Path):
    assert kubectl_reads(kubectl, TRICKY_VALUES) == TRICKY_VALUES


@settings(max_examples=25, deadline=None)
@given(values=st.lists(LABEL_VALUE, min_size=1, max_size=60))
def test_kubectl_reads_label_values_back_as_the_same_strings(kubectl: Path, values: list[str]):
    assert kubectl_reads(kubectl, values) == values
