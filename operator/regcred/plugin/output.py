"""What `kubectl regcred` prints: progress to stderr, results to stdout as tables, JSON or YAML."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

import yaml

from regcred.kube.client import JsonObject

__all__ = ["EXIT_CHANGES", "EXIT_ERROR", "PROG", "ManifestDumper", "emit", "emit_all", "progress", "table"]

PROG = "kubectl regcred"
EXIT_CHANGES = 1
EXIT_ERROR = 2

# PyYAML leaves some strings unquoted that kubectl's YAML reader (goyaml v2) takes for
# something else: 1e5 and 0o17 for numbers (a label value "123e4567" came back as a
# float), y, Y, n and N for booleans. These patterns are what kubectl reads as a
# number or boolean and PyYAML does not quote; tests check them against kubectl itself.
_KUBECTL_NOT_A_STRING = re.compile(
    r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|0o[0-7]+|[yYnN]"
)


class ManifestDumper(yaml.SafeDumper):
    """Safe YAML whose strings read back as strings in kubectl too."""

    def represent_str(self, data: str) -> yaml.ScalarNode:
        if _KUBECTL_NOT_A_STRING.fullmatch(data):
            return self.represent_scalar("tag:yaml.org,2002:str", data, style="'")
        return super().represent_str(data)


ManifestDumper.add_representer(str, ManifestDumper.represent_str)


def progress(message: str) -> None:
    """One line of progress on stderr, so that stdout holds only the result."""
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def table(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    """Print `rows` (the first is the header) in left-aligned columns."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), file=out)


def emit(document: Any, output: str, out: TextIO) -> None:
    """Print one document as JSON or (kubectl-safe) YAML."""
    if output == "json":
        json.dump(document, out, indent=2)
        out.write("\n")
    else:
        yaml.dump(document, out, Dumper=ManifestDumper, sort_keys=False)


def emit_all(documents: Iterable[JsonObject], output: str, out: TextIO) -> None:
    """Print manifests as a JSON List or a multi-document YAML stream, as kubectl applies them."""
    if output == "json":
        emit({"apiVersion": "v1", "kind": "List", "items": list(documents)}, "json", out)
    else:
        yaml.dump_all(list(documents), out, Dumper=ManifestDumper, sort_keys=False)
