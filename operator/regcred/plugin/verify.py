"""`kubectl regcred verify NAME`: check a credential's logins against the registries now.

The same check as spec.verify. Exit code 0: all accepted, 1: not all, 2: an error.
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from regcred.controller.clock import utc_now
from regcred.models import RegistryCredentialSpec
from regcred.planning.verification import credentials_condition, logins, plain_http_servers
from regcred.plugin.output import EXIT_CHANGES, emit, progress, table
from regcred.plugin.shared import (
    UsageError,
    add_reading_arguments,
    add_tenant_namespace_argument,
    client,
    get_credential,
    snapshot,
    source_problems,
)
from regcred.registry import Egress, check_login

__all__ = ["add_command", "run_verify"]


def add_command(commands: Any) -> None:
    verify = commands.add_parser("verify", help="check a credential's logins against the registries now")
    verify.add_argument("name", metavar="NAME")
    add_tenant_namespace_argument(verify)
    add_reading_arguments(verify)
    verify.set_defaults(handler=run_verify)


def run_verify(args: argparse.Namespace, out: TextIO) -> int:
    body = get_credential(client(args), args.name, args.namespace)
    cluster = snapshot(args, [body])
    preview = cluster.preview(body)
    if preview.content.docker_config is None:
        raise UsageError("the sources are invalid, nothing to check: " + "; ".join(source_problems(preview)))
    plain_http = plain_http_servers(RegistryCredentialSpec.model_validate(body.get("spec") or {}))
    checks = []
    for login in logins(preview.content.docker_config):
        progress(f"checking {login.server}")
        egress = Egress(plain_http=login.server in plain_http)
        checks.append(check_login(login, utc_now(), args.registry_ca_file, egress))
    if args.output in ("json", "yaml"):
        emit([check.model_dump(by_alias=True) for check in checks], args.output, out)
    else:
        table([("SERVER", "RESULT", "MESSAGE")] + [(c.server, c.result, c.message) for c in checks], out)
    status, _, _ = credentials_condition(checks)
    return 0 if status == "True" else EXIT_CHANGES
