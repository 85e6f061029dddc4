"""`kubectl regcred create NAME`: the source Secret and the credential as manifests (for Git),
or applied server-side with `--apply`.

A RegistryCredential, its source Secret in the operator's namespace (or --source-namespace);
with -n NS a TenantRegistryCredential in NS, its source Secret beside it, as the tenant
CRD wants (a namespace in its references is refused at admission).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from regcred.config import OperatorConfig, settings_from_env
from regcred.errors import RegcredError
from regcred.kube.client import JsonObject, KubeClient, object_path
from regcred.kube.paths import credential_path
from regcred.models import (
    API_GROUP,
    API_VERSION,
    KIND,
    TENANT_KIND,
    RegistryCredentialSpec,
    TenantRegistryCredentialSpec,
)
from regcred.options import add_operator_namespace_argument
from regcred.planning.dockerconfig import parse_docker_config, render_docker_config
from regcred.planning.sources import DOCKER_CONFIG_KEY, DOCKER_CONFIG_TYPE
from regcred.plugin.output import emit_all
from regcred.plugin.shared import UsageError, add_plugin_connection_arguments, client

__all__ = ["FIELD_MANAGER", "add_command", "run_create"]

FIELD_MANAGER = "kubectl-regcred"


def add_command(commands: Any) -> None:
    create = commands.add_parser(
        "create", help="a source Secret and a RegistryCredential (with -n, a TenantRegistryCredential): "
        "print them, or --apply",
    )
    create.add_argument("name", metavar="NAME")
    create.add_argument(
        "-n", "--namespace", metavar="NS",
        help="make a TenantRegistryCredential in this namespace, its source Secret there too",
    )
    create.add_argument("--server", help="registry host[:port], as in docker login")
    create.add_argument("--username")
    create.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    create.add_argument("--email")
    create.add_argument("--from-docker-config", metavar="PATH", help="a docker config.json (as docker login writes)")
    create.add_argument("--secret-name", help="the pull secret's name in each namespace (default: NAME)")
    create.add_argument(
        "--namespace-selector", metavar="KEY=VALUE[,...]",
        help="namespaces with these labels (with -n: narrows within your tenant)",
    )
    create.add_argument(
        "--namespaces", action="append", metavar="GLOB",
        help="namespace names or globs (repeat; with -n: narrows within your tenant)",
    )
    create.add_argument("--exclude-namespaces", action="append", metavar="GLOB", help="names or globs to skip (repeat)")
    create.add_argument("--service-accounts", action="append", metavar="GLOB", help="(repeat; default: default)")
    add_operator_namespace_argument(create)
    create.add_argument(
        "--source-namespace", metavar="NS",
        help="where a RegistryCredential's source Secret goes, one of the operator's source namespaces "
        "(default: the operator's namespace; with -n, the source Secret goes in NS)",
    )
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


def _source_namespace(args: argparse.Namespace) -> str:
    """Where the source Secret goes: the tenant credential's namespace, else as the operator reads it."""
    if args.namespace:
        if args.source_namespace or args.operator_namespace:
            raise UsageError(
                f"a {TENANT_KIND}'s source Secret lives in its own namespace ({args.namespace}); "
                "drop --source-namespace and --operator-namespace"
            )
        return str(args.namespace)
    if args.source_namespace:
        return str(args.source_namespace)
    try:
        config = OperatorConfig(**{**settings_from_env(), **(
            {"operator_namespace": args.operator_namespace} if args.operator_namespace else {}
        )})
    except ValidationError as error:
        raise UsageError(f"invalid settings: {error}") from None
    return config.operator_namespace


def _source_secret(
    args: argparse.Namespace, name: str, namespace: str, read_password: Callable[[], str]
) -> JsonObject:
    metadata = {"name": name, "namespace": namespace}
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


def _credential_manifest(args: argparse.Namespace, source_name: str, source_namespace: str) -> JsonObject:
    spec: dict[str, Any] = {"secretName": args.secret_name or args.name}
    # A tenant's references name no namespace: its own is the only one allowed.
    reference = {"name": source_name} if args.namespace else {"name": source_name, "namespace": source_namespace}
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
        (TenantRegistryCredentialSpec if args.namespace else RegistryCredentialSpec).model_validate(spec)
    except ValidationError as error:
        problems = "; ".join(
            f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in error.errors(include_url=False, include_input=False)
        )
        raise UsageError(problems) from None
    metadata = {"name": args.name, **({"namespace": args.namespace} if args.namespace else {})}
    kind = TENANT_KIND if args.namespace else KIND
    return {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": kind, "metadata": metadata, "spec": spec}


def _check_create_flags(args: argparse.Namespace) -> None:
    if args.from_docker_config:
        given = [flag for flag, value in (("--server", args.server), ("--username", args.username),
                                          ("--password-stdin", args.password_stdin), ("--email", args.email)) if value]
        if given:
            raise UsageError(f"--from-docker-config takes the registries from the file; drop {', '.join(given)}")
    elif not (args.server and args.username and args.password_stdin):
        raise UsageError("give --server, --username and --password-stdin, or --from-docker-config PATH")
    # A tenant's credential has a place without them: its tenant's namespaces, or its own.
    if not (args.namespace or args.namespace_selector or args.namespaces):
        raise UsageError(
            "say where the secret goes: --namespace-selector KEY=VALUE and/or --namespaces GLOB "
            f"(or -n NS for a {TENANT_KIND}, which serves its tenant's namespaces)"
        )


def _apply(kube: KubeClient, path: str, manifest: JsonObject) -> None:
    kube.request(
        "PATCH", path, query={"fieldManager": FIELD_MANAGER}, body=json.dumps(manifest),
        content_type="application/apply-patch+yaml",
    )


def run_create(args: argparse.Namespace, out: TextIO) -> int:
    _check_create_flags(args)
    source_name = f"{args.name}-registry"
    source_namespace = _source_namespace(args)
    credential = _credential_manifest(args, source_name, source_namespace)
    secret = _source_secret(args, source_name, source_namespace, lambda: sys.stdin.readline().rstrip("\r\n"))
    if not args.apply:
        emit_all([secret, credential], args.output or "yaml", out)
        return 0
    kube = client(args)
    _apply(kube, object_path("v1", "secrets", source_namespace, source_name), secret)
    print(f"secret/{source_name} applied in {source_namespace}", file=out)
    _apply(kube, credential_path(args.name, args.namespace), credential)
    applied = f"{credential['kind'].lower()}.{API_GROUP}/{args.name}"
    print(f"{applied} applied" + (f" in {args.namespace}" if args.namespace else ""), file=out)
    return 0
