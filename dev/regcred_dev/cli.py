"""The ``regcred-dev`` command line: the workshop's tools, never shipped.

The local control plane (``cluster``), kind clusters of a locally built node image
(``kind``), the release pipeline (``release``) and the demo. The operator itself is
``regcred run`` (`regcred.cli`). Each command group registers its subcommands on the
shared subparsers object and names the function that runs it (``handler``); `main`
parses and dispatches. Heavy imports happen inside the handlers so that
``regcred-dev --help`` stays fast and importing this module has no side effects.
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

from regcred.logs import configure_logging

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]
SubParsers = Any  # argparse keeps the subparsers action type private

LIVENESS_CHECK_SECONDS = 1.0


def build_parser() -> argparse.ArgumentParser:
    """Return the parser for every ``regcred-dev`` command."""
    parser = argparse.ArgumentParser(
        prog="regcred-dev",
        description="Develop regcred-operator: local clusters, the demo, releases.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_cluster_commands(commands)
    add_demo_command(commands)
    add_kind_commands(commands)
    add_release_commands(commands)
    return parser


def add_demo_command(commands: SubParsers) -> None:
    """Register ``regcred-dev demo``."""
    demo = commands.add_parser(
        "demo", help="local control plane + CRD + operator + examples/, until Ctrl-C"
    )
    demo.add_argument("--crds", type=Path, default=Path("crds"), help="the folder of the CRDs (a kustomization)")
    demo.add_argument("--examples", type=Path, default=Path("examples"))
    demo.add_argument("--kubeconfig", type=Path, metavar="PATH", help="also write the admin kubeconfig here")
    demo.set_defaults(handler=run_demo_command)


def run_demo_command(args: argparse.Namespace) -> int:
    """Run the demo; Ctrl-C ends it and cleans up."""
    from regcred_dev.demo import run_demo

    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        run_demo(args.crds, args.examples, args.kubeconfig.resolve() if args.kubeconfig else None)
    except KeyboardInterrupt:
        return 0
    except RuntimeError as error:
        print(f"regcred-dev: {error}", file=sys.stderr)
        return 1
    return 0


def add_cluster_commands(commands: SubParsers) -> None:
    """Register ``regcred-dev cluster build`` and ``regcred-dev cluster up``."""
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
    from regcred_dev.controlplane.build import BuildError, ensure_binaries

    try:
        print(ensure_binaries())
    except BuildError as error:
        print(f"regcred-dev: {error}", file=sys.stderr)
        return 1
    return 0


def run_cluster_up(args: argparse.Namespace) -> int:
    """Start a local control plane, announce its kubeconfig, and run until interrupted."""
    from regcred_dev.controlplane.build import BuildError
    from regcred_dev.controlplane.runner import ControlPlaneError, LocalControlPlane

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
        print(f"regcred-dev: {error}", file=sys.stderr)
        return 1


def add_kind_commands(commands: SubParsers) -> None:
    """Register ``regcred-dev kind build|up|image|demo|down|python-base``."""
    kind = commands.add_parser(
        "kind", help="a kind cluster from a node image built here (no registry needed)"
    )
    kind_commands = kind.add_subparsers(dest="kind_command", required=True, metavar="COMMAND")

    build = kind_commands.add_parser(
        "build", help="build (or find cached) the pinned kind and node image; print them"
    )
    build.set_defaults(handler=run_kind_build)

    up = kind_commands.add_parser("up", help="create a kind cluster (or reuse a healthy one)")
    up.add_argument("--name", required=True, help="the kind cluster's name")
    up.add_argument(
        "--kubeconfig", type=Path, metavar="PATH",
        help="write the admin kubeconfig here (default: ./NAME.kubeconfig)",
    )
    up.add_argument(
        "--trust", action="append", default=[], metavar="HOST:PORT=CA_FILE",
        help="make the node trust CA_FILE for the registry at HOST:PORT (repeatable)",
    )
    up.set_defaults(handler=run_kind_up)

    image = kind_commands.add_parser(
        "image", help="build the operator's image (regcred-operator:dev) and load it into a cluster"
    )
    image.add_argument("--name", required=True, help="the kind cluster's name")
    image.add_argument(
        "--source", type=Path, default=Path("."), metavar="DIR",
        help="the source checkout holding the Dockerfile (default: the current folder)",
    )
    image.set_defaults(handler=run_kind_image)

    demo = kind_commands.add_parser(
        "demo",
        help="a tenant Pod pulls a private image on kind once a RegistryCredential selects it",
    )
    demo.add_argument("--name", default="regcred-demo", help="the kind cluster's name "
                      "(default regcred-demo; the registry container is NAME-registry)")
    demo.add_argument(
        "--source", type=Path, default=Path("."), metavar="DIR",
        help="the checkout holding the Dockerfile and deploy/kind (default: the current folder)",
    )
    demo.add_argument(
        "--kubeconfig", type=Path, metavar="PATH",
        help="write the admin kubeconfig here (default: beside the cluster's cached files)",
    )
    demo.add_argument(
        "--keep", action="store_true",
        help="leave the cluster and registry running after Ctrl-C (default: delete them)",
    )
    demo.set_defaults(handler=run_kind_demo_command)

    down = kind_commands.add_parser("down", help="delete a kind cluster")
    down.add_argument("--name", required=True, help="the kind cluster's name")
    down.set_defaults(handler=run_kind_down)

    python_base = kind_commands.add_parser(
        "python-base", help="build (or find cached) a local Debian Python base image; print its tag"
    )
    python_base.set_defaults(handler=run_kind_python_base)


def kind_command(run: Callable[[argparse.Namespace], int]) -> Handler:
    """A `regcred-dev kind` handler whose build, Docker and kind failures exit 1 with a message."""

    def handler(args: argparse.Namespace) -> int:
        from regcred_dev.controlplane import BuildError, KubectlError
        from regcred_dev.kind import DockerError, KindError, RegistryError

        try:
            return run(args)
        except (BuildError, DockerError, KindError, KubectlError, RegistryError) as error:
            print(f"regcred-dev: {error}", file=sys.stderr)
            return 1

    return handler


@kind_command
def run_kind_build(args: argparse.Namespace) -> int:
    """Build or find the kind binary and node image; print what there is."""
    from regcred_dev.kind import ensure_node_image

    node = ensure_node_image()
    print(f"kind: {node.kind_binary}")
    print(f"node image: {node.tag}")
    print(f"node image cache: {node.cache_folder}")
    for line in node.quirks.describe():
        print(f"host quirk: {line}")
    if node.docker_shim_folder is not None:
        print(f"docker shim for kind: {node.docker_shim_folder}/docker")
    return 0


@kind_command
def run_kind_up(args: argparse.Namespace) -> int:
    """Create or reuse a kind cluster and print its kubeconfig and network."""
    from regcred_dev.kind import create_cluster

    trusted: dict[str, Path] = {}
    for entry in args.trust:
        registry, separator, ca_file = entry.partition("=")
        if not separator or not registry or not ca_file:
            print(f"regcred-dev: --trust wants HOST:PORT=CA_FILE, got {entry!r}", file=sys.stderr)
            return 2
        trusted[registry] = Path(ca_file)
    kubeconfig = args.kubeconfig or Path(f"{args.name}.kubeconfig")
    cluster = create_cluster(args.name, kubeconfig, trusted)
    print(f"ready: kubeconfig={cluster.kubeconfig} network={cluster.network} gateway={cluster.gateway}")
    return 0


@kind_command
def run_kind_image(args: argparse.Namespace) -> int:
    """Build the operator's image from a checkout and load it into the cluster's node."""
    from regcred_dev.kind import load_image
    from regcred_dev.kind.operator_image import build_operator_image

    tag = build_operator_image(args.source)
    load_image(args.name, tag)
    print(f"loaded: {tag} into kind cluster {args.name}")
    return 0


@kind_command
def run_kind_demo_command(args: argparse.Namespace) -> int:
    """Run the kind demo until Ctrl-C; it cleans up unless --keep."""
    from regcred_dev.kind.demo import DemoSettings, run_kind_demo

    # Started in the background by a shell, we would ignore SIGINT; Ctrl-C must still end it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    settings = DemoSettings(
        name=args.name,
        source=args.source.resolve(),
        kubeconfig=args.kubeconfig.resolve() if args.kubeconfig else None,
        keep=args.keep,
    )
    try:
        run_kind_demo(settings)
    except KeyboardInterrupt:
        return 0  # Ctrl-C is how the demo is meant to end
    return 0


@kind_command
def run_kind_down(args: argparse.Namespace) -> int:
    """Delete a kind cluster."""
    from regcred_dev.kind import delete_cluster

    delete_cluster(args.name)
    return 0


@kind_command
def run_kind_python_base(args: argparse.Namespace) -> int:
    """Build or find the local Python base image and print its tag."""
    from regcred_dev.kind import ensure_python_base_image

    print(ensure_python_base_image())
    return 0


def add_release_commands(commands: SubParsers) -> None:
    """Register ``regcred-dev release build|tools|check|notes`` (the Makefile's release target)."""
    release = commands.add_parser(
        "release", help="build, push and sign a release's artifacts (make release)"
    )
    release_commands = release.add_subparsers(dest="release_command", required=True, metavar="COMMAND")

    build = release_commands.add_parser(
        "build", help="the image, chart, wheel and sdist, an SBOM and signatures of one version"
    )
    build.add_argument("--version", required=True, help="X.Y.Z; every version place must say it")
    build.add_argument(
        "--registry", metavar="HOST[:PORT]/PATH",
        help="push the image and chart here (default: a registry on 127.0.0.1 for this run, "
        "its contents saved into --output)",
    )
    build.add_argument(
        "--registry-ca", type=Path, metavar="PEM", help="trust this CA for the registry"
    )
    build.add_argument(
        "--docker-config", type=Path, metavar="DIR",
        help="the registry credentials' config.json folder (default: $DOCKER_CONFIG or ~/.docker)",
    )
    build.add_argument(
        "--output", type=Path, metavar="DIR", help="where the files go (default: dist/release/VERSION)"
    )
    build.add_argument(
        "--cosign-key", type=Path, metavar="KEY",
        help="sign with this cosign private key (its password in $COSIGN_PASSWORD)",
    )
    build.add_argument(
        "--keyless", action="store_true", help="sign keyless (needs an OIDC identity, as on CI)"
    )
    build.add_argument(
        "--python-image", metavar="IMAGE", help="the Dockerfile's PYTHON_IMAGE (default: its own)"
    )
    build.add_argument(
        "--local-python-base", action="store_true",
        help="build on a Python base made here with debootstrap (no registry needed)",
    )
    build.add_argument(
        "--platforms", default="", metavar="LIST",
        help="e.g. linux/amd64,linux/arm64: build with buildx for these (default: this engine's)",
    )
    build.add_argument(
        "--source", type=Path, default=Path("."), metavar="DIR", help="the checkout (default: .)"
    )
    build.set_defaults(handler=run_release_build)

    tools = release_commands.add_parser(
        "tools", help="build (or find cached) the pinned tools a release and its tests run; print them"
    )
    tools.set_defaults(handler=run_release_tools)

    check = release_commands.add_parser(
        "check", help="exit 0 when every version place says VERSION and CHANGELOG.md has its notes"
    )
    check.add_argument("version", help="X.Y.Z")
    check.add_argument("--source", type=Path, default=Path("."), metavar="DIR")
    check.set_defaults(handler=run_release_check)

    notes = release_commands.add_parser("notes", help="print CHANGELOG.md's entry for VERSION")
    notes.add_argument("version", help="X.Y.Z")
    notes.add_argument("--source", type=Path, default=Path("."), metavar="DIR")
    notes.set_defaults(handler=run_release_notes)


def release_command(run: Callable[[argparse.Namespace], int]) -> Handler:
    """A `regcred-dev release` handler whose failures exit 1 with a message."""

    def handler(args: argparse.Namespace) -> int:
        from regcred_dev.controlplane import BuildError
        from regcred_dev.kind import DockerError, RegistryError
        from regcred_dev.release import ReleaseError

        try:
            return run(args)
        except (BuildError, DockerError, RegistryError, ReleaseError) as error:
            print(f"regcred-dev: {error}", file=sys.stderr)
            return 1

    return handler


@release_command
def run_release_build(args: argparse.Namespace) -> int:
    """Make every artifact of one version; print where they are and how to verify them."""
    import os

    from regcred_dev.release import Endpoint, ReleaseSettings, make_release, verify_commands

    endpoint = None
    if args.registry:
        config = args.docker_config or Path(
            os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker"
        )
        endpoint = Endpoint(args.registry.rstrip("/"), config.resolve(), args.registry_ca)
    python_image = args.python_image
    if args.local_python_base:
        from regcred_dev.kind import ensure_python_base_image

        python_image = ensure_python_base_image()
    settings = ReleaseSettings(
        version=args.version,
        source=args.source.resolve(),
        output=args.output or Path("dist") / "release" / args.version,
        endpoint=endpoint,
        cosign_key=args.cosign_key,
        keyless=args.keyless,
        python_image=python_image,
        platforms=tuple(filter(None, args.platforms.split(","))),
    )
    record = make_release(settings)
    if record.registry is None:
        # The references name a registry that lived for the run only.
        print(f"image: {record.image['digest']} (saved as an OCI layout)")
        print(f"chart: {record.chart['digest']} (saved as an OCI layout)")
    else:
        print(f"image: {record.image['reference']}")
        print(f"chart: {record.chart['reference']}")
    for name, entry in sorted(record.files.items()):
        print(f"file: {name} {entry['size']} bytes sha256:{entry['sha256']}")
    for command in verify_commands(record):
        print(f"verify: {command}")
    return 0


@release_command
def run_release_tools(args: argparse.Namespace) -> int:
    """Build or find every pinned release tool; print name, version, path and build time."""
    from regcred_dev.release.tools import ACTIONLINT, RELEASE_TOOLS

    for tool in (*RELEASE_TOOLS, ACTIONLINT):
        started = time.monotonic()
        binary = tool.ensure()
        print(f"{tool.name} {tool.version}: {binary} ({time.monotonic() - started:.1f} s)")
    return 0


@release_command
def run_release_check(args: argparse.Namespace) -> int:
    """Exit 0 when the checkout is ready to release VERSION, else say what differs."""
    from regcred_dev.release import check_release_version

    check_release_version(args.version, args.source.resolve())
    print(f"{args.version}: every version place agrees and CHANGELOG.md has its notes")
    return 0


@release_command
def run_release_notes(args: argparse.Namespace) -> int:
    """Print the release notes of VERSION from CHANGELOG.md."""
    from regcred_dev.release import ReleaseError
    from regcred_dev.release.versions import CHANGELOG, release_notes

    try:
        print(release_notes((args.source / CHANGELOG).read_text(), args.version))
    except LookupError as error:
        raise ReleaseError(str(error)) from None
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``regcred-dev`` command line; return the process exit code."""
    args = build_parser().parse_args(argv)
    configure_logging(logging.DEBUG if args.verbose else logging.INFO)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
