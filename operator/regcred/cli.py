"""The ``regcred`` command line: what the operator's image runs (``regcred run``).

The development tools (the local control plane, kind, the release pipeline, the
demo) are ``regcred-dev``, in the separate development package that never ships.
The operator is imported inside the handler so that ``regcred --help`` stays fast
and importing this module has no side effects.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from regcred.logs import configure_logging
from regcred.options import (
    add_connection_arguments,
    add_namespace_arguments,
    add_tenant_verify_arguments,
    config_from_args,
)

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]
SubParsers = Any  # argparse keeps the subparsers action type private


def build_parser() -> argparse.ArgumentParser:
    """Return the parser for every ``regcred`` command."""
    parser = argparse.ArgumentParser(
        prog="regcred", description="Replicate image pull secrets into namespaces."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_operator_commands(commands)
    return parser


def add_operator_commands(commands: SubParsers) -> None:
    """Register ``regcred run``."""
    run = commands.add_parser("run", help="run the operator against a cluster")
    add_connection_arguments(run)
    add_namespace_arguments(run)
    add_tenant_verify_arguments(run)
    run.add_argument("--concurrency", type=int, metavar="N", help="parallel API writes (default 16)")
    run.add_argument("--resync-seconds", type=float, metavar="S", help="full resync period (default 300)")
    run.add_argument("--log-format", choices=("text", "json"), default="text")
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

    configure_logging(args.verbose, args.log_format)
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
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
