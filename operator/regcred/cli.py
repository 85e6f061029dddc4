"""The ``regcred`` command line.

Each command group registers its subcommands on the shared subparsers object and
names the function that runs it (``handler``); `main` parses and dispatches. Heavy
imports (the control plane, the operator) happen inside the handlers so that
``regcred --help`` stays fast and importing this module has no side effects.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]
SubParsers = Any  # argparse keeps the subparsers action type private

LIVENESS_CHECK_SECONDS = 1.0


def build_parser() -> argparse.ArgumentParser:
    """Return the parser for every ``regcred`` command."""
    parser = argparse.ArgumentParser(
        prog="regcred", description="Replicate image pull secrets into namespaces."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_cluster_commands(commands)
    return parser


def add_cluster_commands(commands: SubParsers) -> None:
    """Register ``regcred cluster build`` and ``regcred cluster up``."""
    cluster = commands.add_parser(
        "cluster", help="the local Kubernetes control plane used for tests and demos"
    )
    cluster_commands = cluster.add_subparsers(
        dest="cluster_command", required=True, metavar="COMMAND"
    )

    build = cluster_commands.add_parser(
        "build", help="build (or find cached) control-plane binaries; print their folder"
    )
    build.set_defaults(handler=run_cluster_build)

    up = cluster_commands.add_parser(
        "up", help="run a local control plane in the foreground until Ctrl-C"
    )
    up.add_argument(
        "--kubeconfig",
        type=Path,
        metavar="PATH",
        help="also write the admin kubeconfig here (default: inside the temporary folder)",
    )
    up.set_defaults(handler=run_cluster_up)


def run_cluster_build(args: argparse.Namespace) -> int:
    """Build the control-plane binaries if needed and print their folder."""
    from regcred.controlplane.build import BuildError, ensure_binaries

    try:
        print(ensure_binaries())
    except BuildError as error:
        print(f"regcred: {error}", file=sys.stderr)
        return 1
    return 0


def run_cluster_up(args: argparse.Namespace) -> int:
    """Start a local control plane, announce its kubeconfig, and run until interrupted."""
    from regcred.controlplane.build import BuildError
    from regcred.controlplane.runner import ControlPlaneError, LocalControlPlane

    kubeconfig = args.kubeconfig.resolve() if args.kubeconfig else None
    # A shell starting us in the background ignores SIGINT for us; Ctrl-C (or kill
    # -INT) must still shut the cluster down cleanly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with LocalControlPlane(kubeconfig_path=kubeconfig) as control_plane:
            print(f"ready: kubeconfig={control_plane.kubeconfig}", flush=True)
            while True:
                time.sleep(LIVENESS_CHECK_SECONDS)
                control_plane.check_alive()
    except KeyboardInterrupt:
        return 0  # Ctrl-C is how this command is meant to end
    except (BuildError, ControlPlaneError) as error:
        print(f"regcred: {error}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``regcred`` command line; return the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
