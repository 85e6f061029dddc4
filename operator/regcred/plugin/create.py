"""`kubectl regcred create NAME`: the source Secret and the RegistryCredential as manifests (for
Git), or applied server-side with `--apply`."""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from regcred.errors import RegcredError
from regcred.kube.client import JsonObject, KubeClient, object_path
from regcred.kube.resources import credential_path
from regcred.models import API_GROUP, API_VERSION, KIND, RegistryCredentialSpec
from regcred.planning.dockerconfig import parse_docker_config, render_docker_config
from regcred.planning.sources import DOCKER_CONFIG_KEY, DOCKER_CONFIG_TYPE
from regcred.plugin.output import emit_all
from regcred.plugin.shared import UsageError, add_plugin_connection_arguments, client

__all__ = ["FIELD_MANAGER", "add_command", "run_create"]

FIELD_MANAGER = "kubectl-regcred"


def add_command(commands: Any) -> None:
    create = commands.add_parser("create", help="a source Secret and a RegistryCredential: print them, or --apply")
    create.add_argument("name", metavar="NAME")
    create.add_argument("--server", help="registry host[:port], as in docker login")
    create.add_argument("--username")
    create.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    create.add_argument("--email")
    create.add_argument("--from-docker-config", metavar="PATH", help="a docker config.json (as docker login writes)")
    create.add_argument("--secret-name", help="the pull secret's name in each namespace (default: NAME)")
    create.add_argument("--namespace-selector", metavar="KEY=VALUE[,...]", help="namespaces with these labels")
    create.add_argument("--namespaces", action="append", metavar="GLOB", help="namespace names or globs (repeat)")
    create.add_argument("--exclude-namespaces", action="append", metavar="GLOB", help="names or globs to skip (repeat)")
    create.add_argument("--service-accounts", action="append", metavar="GLOB", help="(repeat; default: default)")
    create.add_argument("--source-namespace", default="regcred-system", metavar="NS",
                        help="where the source Secret lives (default: regcred-system)")
    create.add_argument("--apply", action="store_true", help="apply both (server-side) instead of printing them")
    add_plugin_connection_arguments(create)
    create.add_argument("-o", "--output", choices=("yaml", "json"))
    create.set_defaults(handler=run_create)


def _labels(pairs: str) -> dict[str, str]:
    labels = {}
    for pair in filter(None, (p.strip() for p in pairs.split(","))):
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--namespace-selector: {pair!r} is not KEY=VALUE")
        labels[key] = value
    return labels


def _source_secret(args: argparse.Namespace, name: str, read_password: Callable[[], str]) -> JsonObject:
    metadata = {"name": name, "namespace": args.source_namespace}
    if args.from_docker_config:
        path = Path(args.from_docker_config).expanduser()
        try:
            raw = path.read_bytes()
        except OSError as error:
            raise UsageError(f"cannot read {path}: {error.strerror}") from None
        try:
            auths = parse_docker_config(raw, str(path))
        except RegcredError as error:
            raise UsageError(str(error)) from None
        usable = {server: entry for server, entry in auths.items() if entry.get("auth") or entry.get("password")}
        if not usable:
            raise UsageError(
                f"{path} holds no credentials in 'auths' (docker keeps them in a credential helper "
                "when credsStore or credHelpers is set); use --server, --username and --password-stdin"
            )
        content = render_docker_config(usable)
        return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "type": DOCKER_CONFIG_TYPE,
                "data": {DOCKER_CONFIG_KEY: base64.b64encode(content).decode()}}
    password = read_password()
    if not password:
        raise UsageError("--password-stdin: no password on stdin")
    data = {"username": args.username, "password": password}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "type": "Opaque",
            "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}}


def _credential_manifest(args: argparse.Namespace, source_name: str) -> JsonObject:
    spec: dict[str, Any] = {"secretName": args.secret_name or args.name}
    reference = {"name": source_name, "namespace": args.source_namespace}
    if args.from_docker_config:
        spec["dockerConfigSecretRefs"] = [reference]
    else:
        registry: dict[str, Any] = {"server": args.server, "passwordSecretRef": reference}
        if args.email:
            registry["email"] = args.email
        spec["registries"] = [registry]
    if args.namespace_selector:
        spec["namespaceSelector"] = {"matchLabels": _labels(args.namespace_selector)}
    if args.namespaces:
        spec["namespaces"] = args.namespaces
    if args.exclude_namespaces:
        spec["excludeNamespaces"] = args.exclude_namespaces
    spec["serviceAccounts"] = args.service_accounts or ["default"]
    try:
        RegistryCredentialSpec.model_validate(spec)
    except ValidationError as error:
        problems = "; ".join(
            f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in error.errors(include_url=False, include_input=False)
        )
        raise UsageError(problems) from None
    return {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": KIND, "metadata": {"name": args.name}, "spec": spec}


def _check_create_flags(args: argparse.Namespace) -> None:
    if args.from_docker_config:
        given = [flag for flag, value in (("--server", args.server), ("--username", args.username),
                                          ("--password-stdin", args.password_stdin), ("--email", args.email)) if value]
        if given:
            raise UsageError(f"--from-docker-config takes the registries from the file; drop {', '.join(given)}")
    elif not (args.server and args.username and args.password_stdin):
        raise UsageError("give --server, --username and --password-stdin, or --from-docker-config PATH")
    if not (args.namespace_selector or args.namespaces):
        raise UsageError("say where the secret goes: --namespace-selector KEY=VALUE and/or --namespaces GLOB")


def _apply(kube: KubeClient, path: str, manifest: JsonObject) -> None:
    kube.request(
        "PATCH", path, query={"fieldManager": FIELD_MANAGER}, body=json.dumps(manifest),
        content_type="application/apply-patch+yaml",
    )


def run_create(args: argparse.Namespace, out: TextIO) -> int:
    _check_create_flags(args)
    source_name = f"{args.name}-registry"
    credential = _credential_manifest(args, source_name)
    secret = _source_secret(args, source_name, lambda: sys.stdin.readline().rstrip("\r\n"))
    if not args.apply:
        emit_all([secret, credential], args.output or "yaml", out)
        return 0
    kube = client(args)
    _apply(kube, object_path("v1", "secrets", args.source_namespace, source_name), secret)
    print(f"secret/{source_name} applied in {args.source_namespace}", file=out)
    _apply(kube, credential_path(args.name), credential)
    print(f"registrycredential.{API_GROUP}/{args.name} applied", file=out)
    return 0
