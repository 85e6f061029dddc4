"""`kubectl regcred plan -f FILE`: what applying credential manifests would change; writes nothing.

Exit code 0: no change, 1: changes, 2: an error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

import yaml

from regcred.errors import InvalidSpecError
from regcred.kube.client import JsonObject
from regcred.models import API_GROUP, KIND, TENANT_KIND
from regcred.planning.preview import NamespaceChange, summarize
from regcred.plugin.output import EXIT_CHANGES, emit, table
from regcred.plugin.shared import (
    Cluster,
    UsageError,
    add_reading_arguments,
    identity,
    rows,
    snapshot,
    source_problems,
    title,
)

__all__ = ["add_command", "run_plan"]


def add_command(commands: Any) -> None:
    plan = commands.add_parser("plan", help="what applying RegistryCredential manifests would change (no writes)")
    plan.add_argument("-f", "--filename", required=True, metavar="FILE", help="manifest file, or - for stdin")
    plan.add_argument("--all", action="store_true", help="also list namespaces that stay as they are")
    add_reading_arguments(plan)
    plan.set_defaults(handler=run_plan)


def _read_manifests(filename: str) -> list[JsonObject]:
    try:
        text = sys.stdin.read() if filename == "-" else Path(filename).read_text(encoding="utf-8")
        documents = [d for d in yaml.safe_load_all(text) if d]
    except OSError as error:
        raise UsageError(f"cannot read {filename}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise UsageError(f"{filename} is not YAML: {error}") from None
    credentials = [
        d for d in documents
        if isinstance(d, dict)
        and d.get("kind") in (KIND, TENANT_KIND)
        and str(d.get("apiVersion", "")).startswith(f"{API_GROUP}/")
    ]
    if not credentials:
        raise UsageError(f"{filename} holds no {KIND} or {TENANT_KIND} ({API_GROUP}) manifest")
    return credentials


def _change_document(row: NamespaceChange) -> dict[str, Any]:
    return {
        "namespace": row.namespace,
        "replica": row.replica or None,
        "serviceAccounts": list(row.service_accounts),
        "outcome": row.outcome,
        "reason": row.reason or None,
    }


def _view_document(cluster: Cluster) -> dict[str, Any]:
    """For a view limited to readable namespaces: which were read and which were not."""
    view = cluster.tenant_view
    return {} if view is None else {"readNamespaces": list(view.namespaces), "notShown": list(view.unreadable)}


def run_plan(args: argparse.Namespace, out: TextIO) -> int:
    manifests = _read_manifests(args.filename)
    cluster = snapshot(args, manifests)
    results = []
    for manifest in manifests:
        try:
            preview = cluster.preview(manifest)
        except InvalidSpecError as error:
            meta = manifest.get("metadata", {})
            kind = manifest.get("kind", KIND)
            where = f"{meta['namespace']}/" if kind == TENANT_KIND and meta.get("namespace") else ""
            raise UsageError(f"{kind} {where}{meta.get('name', '?')}: {error}") from None
        changes = rows(cluster, preview)
        results.append((preview, changes, summarize(changes)))

    if args.output in ("json", "yaml"):
        emit([
            {
                **identity(preview),
                "secretName": preview.secret_name,
                "exists": preview.exists,
                "sourceProblems": source_problems(preview),
                "namespaces": [_change_document(row) for row in changes],
                "summary": vars(summary),
                **_view_document(cluster),
            }
            for preview, changes, summary in results
        ], args.output, out)
    else:
        for preview, changes, summary in results:
            state = "in the cluster" if preview.exists else "new"
            print(f"{title(preview.namespace, preview.credential)} ({state}), secret {preview.secret_name}:", file=out)
            for problem in source_problems(preview):
                print(f"  source problem, replicas keep their last good copy: {problem}", file=out)
            shown = [row for row in changes if row.changes or row.outcome in ("Conflict", "Failed") or args.all]
            if shown:
                table(
                    [("NAMESPACE", "REPLICA", "SERVICEACCOUNTS", "RESULT")]
                    + [
                        (row.namespace, row.replica or "-", ",".join(row.service_accounts) or "-",
                         f"{row.outcome}: {row.reason}" if row.reason else row.outcome)
                        for row in shown
                    ],
                    out,
                )
            print(f"  {summary}", file=out)
            if cluster.tenant_view is not None:
                view = cluster.tenant_view
                print(f"  planned over the namespaces you may read: {', '.join(view.namespaces)}", file=out)
                if view.unreadable:
                    print(f"  not shown (you may not read them): {', '.join(view.unreadable)}", file=out)
    return EXIT_CHANGES if any(summary.changes for _, _, summary in results) else 0
