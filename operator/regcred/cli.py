"""The ``regcred`` command line: what the operator's image runs (``regcred run``).

The development tools (the local control plane, kind, the release pipeline, the
demo) are ``regcred-dev``, in the separate development package that never ships.
The operator is imported inside the handler so that ``regcred --help`` stays fast
and importing this module has no side effects.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from regcred.logs import configure_logging
from regcred.options import (
    add_connection_arguments,
    add_namespace_arguments,
    add_tenant_verify_arguments,
    config_from_args,
)

__all__ = ["LOG_LEVEL_VARIABLE", "build_parser", "log_level_from_args", "main"]

Handler = Callable[[argparse.Namespace], int]
SubParsers = Any  # argparse keeps the subparsers action type private

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_LEVEL_VARIABLE = "REGCRED_LOG_LEVEL"


def build_parser() -> argparse.ArgumentParser:
    """Return the parser for every ``regcred`` command."""
    parser = argparse.ArgumentParser(
        prog="regcred", description="Replicate image pull secrets into namespaces."
    )
    add_global_arguments(parser, default=None)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_operator_commands(commands)
    return parser


def add_global_arguments(parser: argparse.ArgumentParser, default: Any) -> None:
    """Options taken before or after the command: a Deployment's args put them after `run`.

    The command's copies default to SUPPRESS, so that one given before the command is
    not reset by the command's own default."""
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=default, help="log debug details (as --log-level debug)"
    )
    parser.add_argument(
        "--log-level", choices=LOG_LEVELS, default=default,
        help=f"the least severe records logged (default: ${LOG_LEVEL_VARIABLE}, else info)",
    )


def log_level_from_args(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> int:
    """--log-level, then --verbose, then $REGCRED_LOG_LEVEL, then info; raises ValueError for an unknown name."""
    if args.log_level:
        name = args.log_level
    elif args.verbose:
        name = "debug"
    else:
        name = environ.get(LOG_LEVEL_VARIABLE, "").strip().lower() or "info"
        if name not in LOG_LEVELS:
            raise ValueError(f"{LOG_LEVEL_VARIABLE} must be one of {', '.join(LOG_LEVELS)}, not {name!r}")
    level: int = logging.getLevelNamesMapping()[name.upper()]
    return level


def add_operator_commands(commands: SubParsers) -> None:
    """Register ``regcred run``."""
    run = commands.add_parser("run", help="run the operator against a cluster")
    add_global_arguments(run, default=argparse.SUPPRESS)
    add_connection_arguments(run)
    add_namespace_arguments(run)
    add_tenant_verify_arguments(run)
    run.add_argument("--concurrency", type=int, metavar="N", help="parallel API writes (default 16)")
    run.add_argument("--resync-seconds", type=float, metavar="S", help="full resync period (default 300)")
    run.add_argument(
        "--log-format", choices=("text", "json"), default="text",
        help="text for people, json (one object per line) for log pipelines; the Deployments use json",
    )
    run.add_argument(
        "--health-address", metavar="HOST:PORT", default="0.0.0.0:8081",
        help="serve /healthz and /readyz here (default 0.0.0.0:8081; empty to disable)",
    )
    run.add_argument(
        "--metrics-address", metavar="HOST:PORT", default="0.0.0.0:8080",
        help="serve Prometheus /metrics here (default 0.0.0.0:8080; empty to disable)",
    )
    run.add_argument(
        "--leader-elect", action="store_true",
        help="act only while holding a coordination.k8s.io Lease (run two replicas with this)",
    )
    run.add_argument("--lease-name", default="regcred-operator", help="the leader election Lease's name")
    run.add_argument(
        "--lease-duration", type=float, default=15.0, metavar="S",
        help="seconds a standby waits for a silent leader before taking over (default 15)",
    )
    run.set_defaults(handler=run_operator_command)


def run_operator_command(args: argparse.Namespace) -> int:
    """Run the operator in the foreground until SIGINT/SIGTERM."""
    from pydantic import ValidationError

    from regcred.handlers.runner import LeaderElection, run_operator

    configure_logging(log_level_from_args(args), args.log_format)
    try:
        config = config_from_args(args, concurrency=args.concurrency, resync_seconds=args.resync_seconds)
    except ValidationError as error:
        print(f"regcred: invalid settings: {error}", file=sys.stderr)
        return 2
    election = LeaderElection(args.lease_name, args.lease_duration) if args.leader_elect else None
    return run_operator(
        config,
        kubeconfig=args.kubeconfig,
        context=args.context,
        health_address=args.health_address or None,
        metrics_address=args.metrics_address or None,
        leader_election=election,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``regcred`` command line; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        configure_logging(log_level_from_args(args))
    except ValueError as error:
        parser.error(str(error))
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
