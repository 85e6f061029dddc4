"""`kubectl regcred` (console script `kubectl-regcred`): preview, inspect and create credentials of either kind.

docs/plugin.md is the user's reference (a test keeps its options in step with the parser).

One module per subcommand, each registering its own arguments (``add_command``):

- `plan -f FILE` (`plan`): what applying RegistryCredential manifests would change,
  now, in this cluster; writes nothing. Exit code 0: no change, 1: changes, 2: an error.
- `status [NAME]` (`status`): per namespace, whether the replica and the ServiceAccount
  entries are in place, why not, and which Pods fail to pull for want of a pull secret.
- `verify NAME` (`verify`): check its logins against the registries now (as
  spec.verify does). Exit code 0: all accepted, 1: not all, 2: an error.
- `create NAME` (`create`): the source Secret and the RegistryCredential (with `-n NS`, a
  TenantRegistryCredential) as manifests (for Git), or applied with `--apply`.
- `uninstall --yes` (`uninstall`): delete every credential without waiting for an
  operator, and remove every replica and ServiceAccount entry they left.

`-n NS` names a TenantRegistryCredential. A user without the operator's cluster-wide
read (a tenant with `edit` in its namespaces) gets plans over the namespaces it may read.

`shared` reads the cluster once for the operator's own planning code, so the preview
and the operator cannot disagree; `output` prints (progress to stderr, results to stdout).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from regcred.errors import RegcredError
from regcred.plugin import create, plan, status, uninstall, verify
from regcred.plugin.output import EXIT_ERROR, PROG, ManifestDumper

__all__ = ["ManifestDumper", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Preview, inspect and create RegistryCredentials.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for subcommand in (plan, status, verify, create, uninstall):
        subcommand.add_command(commands)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args, out or sys.stdout)
    except RegcredError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return EXIT_ERROR
