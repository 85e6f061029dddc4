"""`python -m bench`: run every scenario, print the table, write JSON and a plot to the results folder."""

from __future__ import annotations

import argparse
import datetime
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from bench import request_loop
from bench.report import rows, table, write_json, write_plot
from bench.run import Settings, run_benchmark

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_MANY_NAMESPACES = 1000
DEFAULT_GO_FLOOR_CONCURRENCY = (8, 16, 32, 64)
# Unrelated Secrets: at least this many, and this many per namespace of the largest size.
MIN_UNRELATED_SECRETS = 20000
UNRELATED_SECRETS_PER_NAMESPACE = 5


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def parse_settings(argv: Sequence[str] | None) -> tuple[Settings, Path]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="*",
        default=[100, 1000],
        metavar="N",
        help="namespaces per fan-out/rotation run; the largest also runs the steady-state "
        "scenarios (default: 100 1000; 5000 for platform scale; none: only many credentials)",
    )
    parser.add_argument(
        "--rounds",
        type=positive_int,
        default=3,
        help="floor-then-operator rounds of fan-out and rotation per size; medians are "
        "reported (default 3)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=16,
        help="operator --concurrency and floor threads (default 16)",
    )
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=300.0,
        help="idle window for counting writes (default 300)",
    )
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=30.0,
        help="how long a restarted operator runs before its writes and memory are read (default 30)",
    )
    parser.add_argument(
        "--new-namespaces",
        type=int,
        default=200,
        help="namespaces created for the latency scenario (default 200)",
    )
    parser.add_argument(
        "--namespace-rate",
        type=float,
        default=10.0,
        help="their creation rate per second (default 10)",
    )
    parser.add_argument(
        "--unrelated-secrets",
        type=int,
        help=f"Secrets the operator must ignore (default {UNRELATED_SECRETS_PER_NAMESPACE} per "
        f"namespace of the largest size, at least {MIN_UNRELATED_SECRETS}: 50000 at N = 10000)",
    )
    parser.add_argument(
        "--tenant-secrets-mib",
        type=positive_int,
        default=200,
        metavar="MIB",
        help="MiB of large Secrets a namespace editor creates next to its TenantRegistryCredential, "
        "half labelled like replicas (default 200)",
    )
    parser.add_argument(
        "--go-floor-concurrency",
        type=positive_int,
        nargs="*",
        default=list(DEFAULT_GO_FLOOR_CONCURRENCY),
        metavar="C",
        help="the Go floor's concurrency sweep; its best is reported (default "
        + " ".join(map(str, DEFAULT_GO_FLOOR_CONCURRENCY))
        + "; none: no Go floor, and no Go build)",
    )
    parser.add_argument(
        "--many-credentials",
        type=non_negative_int,
        default=200,
        metavar="C",
        help="credentials of the many-credentials scenario, each serving its own slice of the "
        "namespaces, on a cluster of its own (default 200; 0 skips it)",
    )
    parser.add_argument(
        "--many-credentials-namespaces",
        type=positive_int,
        metavar="N",
        help=f"namespaces of the many-credentials scenario (default: the largest of --sizes, "
        f"{DEFAULT_MANY_NAMESPACES} without sizes)",
    )
    parser.add_argument(
        "--request-loop",
        type=positive_int,
        default=request_loop.LOOP_REQUESTS,
        metavar="REQUESTS",
        help="requests of the one-thread loops (Python, Go) run before each round's floors "
        f"(default {request_loop.LOOP_REQUESTS})",
    )
    parser.add_argument(
        "--stop-grace-seconds",
        type=float,
        default=30.0,
        help="SIGTERM to SIGKILL, as a kubelet's grace period (default 30)",
    )
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        metavar="PATH",
        help="benchmark this cluster instead of a local control plane (no write counts: no audit log)",
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS_DIR,
        help="where JSON, plot and operator logs go",
    )
    args = parser.parse_args(argv)
    if not args.sizes and not args.many_credentials:
        parser.error("nothing to run: no --sizes and --many-credentials 0")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    log_dir = args.results_dir / f"bench-{stamp}-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        sizes=tuple(args.sizes),
        rounds=args.rounds,
        concurrency=args.concurrency,
        idle_seconds=args.idle_seconds,
        settle_seconds=args.settle_seconds,
        new_namespaces=args.new_namespaces,
        namespace_rate=args.namespace_rate,
        unrelated_secrets=args.unrelated_secrets
        if args.unrelated_secrets is not None
        else max(
            MIN_UNRELATED_SECRETS, UNRELATED_SECRETS_PER_NAMESPACE * max(args.sizes, default=0)
        ),
        stop_grace_seconds=args.stop_grace_seconds,
        tenant_secrets_mib=args.tenant_secrets_mib,
        external_kubeconfig=args.kubeconfig,
        log_dir=log_dir,
        many_credentials=args.many_credentials,
        many_credentials_namespaces=args.many_credentials_namespaces
        or max(args.sizes, default=DEFAULT_MANY_NAMESPACES),
        go_floor_concurrency=tuple(args.go_floor_concurrency),
        request_loop_requests=args.request_loop,
    )
    return settings, args.results_dir / f"bench-{stamp}"


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings, output = parse_settings(argv)
    run = run_benchmark(settings)
    lines = rows(run)
    print(table(run, lines))
    json_path = output.with_suffix(".json")
    write_json(run, lines, json_path)
    print(f"\nJSON: {json_path}")
    plot_path = output.with_suffix(".png")
    print(
        f"plot: {plot_path}"
        if write_plot(run, plot_path)
        else "plot: skipped (matplotlib is not installed)"
    )
    print(f"operator logs: {settings.log_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
