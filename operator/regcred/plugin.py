"""`kubectl regcred` (console script `kubectl-regcred`): preview, inspect and create RegistryCredentials.

- `plan -f FILE`: what applying RegistryCredential manifests would change, now, in
  this cluster; writes nothing. Exit code 0: no change, 1: changes, 2: an error.
- `status [NAME]`: per namespace, whether the replica and the ServiceAccount entries
  are in place, why not, and which Pods fail to pull for want of a pull secret
  (including Pods stuck since before their ServiceAccount listed it).
- `verify NAME`: check its logins against the registries now (as spec.verify does).
  Exit code 0: all accepted, 1: not all, 2: an error.
- `create NAME`: the source Secret and the RegistryCredential as manifests (for Git),
  or applied with `--apply`.

Plans come from the operator's own planning code over one snapshot of the cluster,
so the preview and the operator cannot disagree. Progress goes to stderr, results
to stdout.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml
from pydantic import ValidationError

from regcred.config import OperatorConfig
from regcred.controller.clock import utc_now
from regcred.controller.preview import Preview, preview
from regcred.controller.snapshot import load_snapshot
from regcred.controller.state import ClusterSnapshot
from regcred.errors import InvalidSpecError, NotFoundError, RegcredError
from regcred.kube.client import JsonObject, KubeClient, load_api_client, object_path
from regcred.kube.resources import CREDENTIALS_PATH, TENANT_CREDENTIALS_PATH, credential_path, list_pending_pods
from regcred.models import API_GROUP, API_VERSION, KIND, PLURAL, TENANT_KIND, RegistryCredentialSpec
from regcred.options import add_connection_arguments, add_namespace_arguments, config_from_args
from regcred.planning.dockerconfig import parse_docker_config, render_docker_config
from regcred.planning.preview import NamespaceChange, describe, pull_failure, summarize
from regcred.planning.sources import DOCKER_CONFIG_KEY, DOCKER_CONFIG_TYPE
from regcred.planning.stuckpods import PodFacts, plan_stuck_pods, stuck_pod_problems
from regcred.planning.verification import credentials_condition, logins, plain_http_servers
from regcred.registry import Egress, check_login

__all__ = ["ManifestDumper", "build_parser", "main"]

PROG = "kubectl regcred"
FIELD_MANAGER = "kubectl-regcred"
EXIT_CHANGES = 1
EXIT_ERROR = 2


class UsageError(RegcredError):
    """Bad flags or input, found before anything is sent."""


# -- output ---------------------------------------------------------------------------
# PyYAML leaves some strings unquoted that kubectl's YAML reader (goyaml v2) takes for
# something else: 1e5 and 0o17 for numbers (a label value "123e4567" came back as a
# float), y, Y, n and N for booleans. These patterns are what kubectl reads as a
# number or boolean and PyYAML does not quote; tests check them against kubectl itself.
_KUBECTL_NOT_A_STRING = re.compile(
    r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|0o[0-7]+|[yYnN]"
)


class ManifestDumper(yaml.SafeDumper):
    """Safe YAML whose strings read back as strings in kubectl too."""

    def represent_str(self, data: str) -> yaml.ScalarNode:
        if _KUBECTL_NOT_A_STRING.fullmatch(data):
            return self.represent_scalar("tag:yaml.org,2002:str", data, style="'")
        return super().represent_str(data)


ManifestDumper.add_representer(str, ManifestDumper.represent_str)


def _progress(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def _table(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), file=out)


def _emit(document: Any, output: str, out: TextIO) -> None:
    if output == "json":
        json.dump(document, out, indent=2)
        out.write("\n")
    else:
        yaml.dump(document, out, Dumper=ManifestDumper, sort_keys=False)


def _change_document(row: NamespaceChange) -> dict[str, Any]:
    return {
        "namespace": row.namespace,
        "replica": row.replica or None,
        "serviceAccounts": list(row.service_accounts),
        "outcome": row.outcome,
        "reason": row.reason or None,
    }


# -- shared set-up --------------------------------------------------------------------
def _client(args: argparse.Namespace) -> KubeClient:
    return KubeClient(load_api_client(args.kubeconfig, args.context))


@dataclass(frozen=True)
class _Cluster:
    """One list of everything the operator would watch, and the settings it would plan with."""

    state: ClusterSnapshot
    config: OperatorConfig

    def preview(self, body: JsonObject) -> Preview:
        return preview(self.state, self.config, body)


def _secret_name(body: JsonObject) -> str:
    return str((body.get("spec") or {}).get("secretName") or body.get("metadata", {}).get("name", ""))


def _snapshot(args: argparse.Namespace, bodies: list[JsonObject]) -> _Cluster:
    """Read the cluster once, as the operator's caches would hold it, for planning `bodies`."""
    try:
        config = config_from_args(args)
    except ValidationError as error:
        raise UsageError(f"invalid settings: {error}") from None
    try:
        state = load_snapshot(
            _client(args), config, [_secret_name(body) for body in bodies],
            on_loaded=lambda informer: _progress(f"read {len(informer)} {informer.name}"),
        )
    except NotFoundError:
        raise UsageError(f"the {KIND} CRD ({PLURAL}.{API_GROUP}) is not installed in this cluster") from None
    return _Cluster(state, config)


def _rows(cluster: _Cluster, preview: Preview) -> list[NamespaceChange]:
    return [
        describe(plan, preview.secret_name, cluster.state.service_accounts_in(plan.namespace))
        for plan in preview.plans
    ]


def _source_problems(preview: Preview) -> list[str]:
    return [f"{type(problem).__name__}: {problem}" for problem in preview.content.problems]


# -- plan -----------------------------------------------------------------------------
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


def _title(namespace: str | None, name: str) -> str:
    """How a credential of either kind is named in output."""
    return f"{KIND} {name}" if namespace is None else f"{TENANT_KIND} {namespace}/{name}"


def _identity(preview: Preview) -> dict[str, Any]:
    return {
        "kind": KIND if preview.namespace is None else TENANT_KIND,
        "credential": preview.credential,
        **({"namespace": preview.namespace} if preview.namespace else {}),
    }


def run_plan(args: argparse.Namespace, out: TextIO) -> int:
    manifests = _read_manifests(args.filename)
    cluster = _snapshot(args, manifests)
    results = []
    for manifest in manifests:
        try:
            preview = cluster.preview(manifest)
        except InvalidSpecError as error:
            meta = manifest.get("metadata", {})
            kind = manifest.get("kind", KIND)
            where = f"{meta['namespace']}/" if kind == TENANT_KIND and meta.get("namespace") else ""
            raise UsageError(f"{kind} {where}{meta.get('name', '?')}: {error}") from None
        rows = _rows(cluster, preview)
        results.append((preview, rows, summarize(rows)))

    if args.output in ("json", "yaml"):
        _emit([
            {
                **_identity(preview),
                "secretName": preview.secret_name,
                "exists": preview.exists,
                "sourceProblems": _source_problems(preview),
                "namespaces": [_change_document(row) for row in rows],
                "summary": vars(summary),
            }
            for preview, rows, summary in results
        ], args.output, out)
    else:
        for preview, rows, summary in results:
            state = "in the cluster" if preview.exists else "new"
            print(f"{_title(preview.namespace, preview.credential)} ({state}), secret {preview.secret_name}:", file=out)
            for problem in _source_problems(preview):
                print(f"  source problem, replicas keep their last good copy: {problem}", file=out)
            shown = [row for row in rows if row.changes or row.outcome in ("Conflict", "Failed") or args.all]
            if shown:
                _table(
                    [("NAMESPACE", "REPLICA", "SERVICEACCOUNTS", "RESULT")]
                    + [
                        (row.namespace, row.replica or "-", ",".join(row.service_accounts) or "-",
                         f"{row.outcome}: {row.reason}" if row.reason else row.outcome)
                        for row in shown
                    ],
                    out,
                )
            print(f"  {summary}", file=out)
    return EXIT_CHANGES if any(summary.changes for _, _, summary in results) else 0


# -- status ---------------------------------------------------------------------------
def _replica_state(row: NamespaceChange) -> str:
    if row.outcome == "Conflict":
        return "conflict"
    return {"": "current", "create": "missing", "update": "outdated", "recreate": "outdated"}.get(
        row.replica.split(",", 1)[0], "leftover"
    )


def _pods_failing_to_pull(client: KubeClient, namespaces: set[str]) -> dict[str, dict[str, str]]:
    """Per namespace and Pod, the problem of Pods whose latest event is a pull-secret or pull-auth failure."""
    events = client.request("GET", "/api/v1/events", query={"fieldSelector": "involvedObject.kind=Pod"})
    latest: dict[tuple[str, str], JsonObject] = {}
    for event in events.get("items", []):
        pod = event.get("involvedObject", {})
        key = (pod.get("namespace", ""), pod.get("name", ""))
        if key[0] not in namespaces:
            continue
        stamp = event.get("lastTimestamp") or event.get("eventTime") or ""
        if key not in latest or stamp >= (latest[key].get("lastTimestamp") or latest[key].get("eventTime") or ""):
            latest[key] = event
    failing: dict[str, dict[str, str]] = {}
    for (namespace, pod), event in latest.items():
        problem = pull_failure(event.get("reason", ""), event.get("message", ""))
        if problem:
            failing.setdefault(namespace, {})[pod] = problem
    return failing


def _stuck_pods(
    cluster: _Cluster, pending: list[PodFacts], secret_name: str, namespaces: set[str]
) -> dict[str, dict[str, str]]:
    """Per namespace and Pod, why a Pod waiting to pull lacks the secret its ServiceAccount lists.

    The same decision the operator makes with spec.restartStuckPods, so that with the
    option off the Pods it would restart are shown, and with it on the ones it leaves.
    """
    stuck: dict[str, dict[str, str]] = {}
    for namespace in namespaces:
        accounts = {sa.name: sa.image_pull_secrets for sa in cluster.state.service_accounts_in(namespace)}
        plan = plan_stuck_pods([p for p in pending if p.namespace == namespace], secret_name, accounts)
        for pod, problem in stuck_pod_problems(plan, secret_name).items():
            stuck.setdefault(namespace, {})[pod.name] = problem
    return stuck


def _status_rows(cluster: _Cluster, body: JsonObject) -> tuple[Preview, list[dict[str, Any]]]:
    preview = cluster.preview(body)
    status = body.get("status") or {}
    reported = {
        issue["namespace"]: issue.get("reason", "")
        for issue in status.get("failedNamespaces", []) + status.get("conflictedNamespaces", [])
    }
    rows = []
    for row in _rows(cluster, preview):
        if row.outcome == "Untargeted" and not row.changes:
            continue
        missing = sorted({entry.split("+", 1)[0] for entry in row.service_accounts if "+" in entry})
        rows.append({
            "namespace": row.namespace,
            "replica": _replica_state(row),
            "serviceAccounts": "patched" if not missing else "missing: " + ",".join(missing),
            "problem": reported.get(row.namespace) or row.reason or None,
        })
    return preview, rows


def _get_credential(client: KubeClient, name: str, namespace: str | None) -> JsonObject:
    """A RegistryCredential, or with a namespace a TenantRegistryCredential, with its kind set."""
    try:
        body = client.request("GET", credential_path(name, namespace))
    except NotFoundError:
        raise UsageError(f"{_title(namespace, name)} not found (or its CRD is not installed)") from None
    return {**body, "kind": KIND if namespace is None else TENANT_KIND}


def _all_credentials(client: KubeClient) -> list[JsonObject]:
    """Every credential of both kinds (a cluster without the tenant CRD has none of that kind)."""
    bodies = [{**body, "kind": KIND} for body in client.request("GET", CREDENTIALS_PATH).get("items", [])]
    try:
        tenant_owned = client.request("GET", TENANT_CREDENTIALS_PATH).get("items", [])
    except NotFoundError:
        tenant_owned = []
    return bodies + [{**body, "kind": TENANT_KIND} for body in tenant_owned]


def run_status(args: argparse.Namespace, out: TextIO) -> int:
    client = _client(args)
    bodies = [_get_credential(client, args.name, args.namespace)] if args.name else _all_credentials(client)
    cluster = _snapshot(args, bodies)
    reports = []
    for body in bodies:
        try:
            preview, rows = _status_rows(cluster, body)
        except InvalidSpecError as error:
            meta = body["metadata"]
            where = {"namespace": meta["namespace"]} if meta.get("namespace") else {}
            reports.append({"kind": body["kind"], "credential": meta["name"], **where, "invalid": str(error),
                            "namespaces": []})
            continue
        reports.append({**_identity(preview), "secretName": preview.secret_name,
                        "sourceProblems": _source_problems(preview), "namespaces": rows})
    namespaces = {row["namespace"] for r in reports for row in r["namespaces"]}
    failing = _pods_failing_to_pull(client, namespaces)
    pending = list_pending_pods(client) if namespaces else []
    for report in reports:
        if "invalid" in report:
            continue
        served = {row["namespace"] for row in report["namespaces"]}
        stuck = _stuck_pods(cluster, pending, report["secretName"], served)
        for row in report["namespaces"]:
            # A stuck Pod's latest event is often only a back-off; its status says more.
            pods = {**failing.get(row["namespace"], {}), **stuck.get(row["namespace"], {})}
            row["podsFailingToPull"] = [f"{pod}: {problem}" for pod, problem in sorted(pods.items())]

    if args.output in ("json", "yaml"):
        _emit(reports, args.output, out)
        return 0
    for report in reports:
        print(f"{_title(report.get('namespace'), report['credential'])}:", file=out)
        if "invalid" in report:
            print(f"  invalid spec: {report['invalid']}", file=out)
            continue
        for problem in report["sourceProblems"]:
            print(f"  source problem: {problem}", file=out)
        if report["namespaces"]:
            _table(
                [("NAMESPACE", "REPLICA", "SERVICEACCOUNTS", "PROBLEM", "PODS FAILING TO PULL")]
                + [
                    (row["namespace"], row["replica"], row["serviceAccounts"], row["problem"] or "-",
                     "; ".join(row["podsFailingToPull"]) or "-")
                    for row in report["namespaces"]
                ],
                out,
            )
        else:
            print("  no matching namespaces", file=out)
    return 0


# -- verify ---------------------------------------------------------------------------
def run_verify(args: argparse.Namespace, out: TextIO) -> int:
    client = _client(args)
    body = _get_credential(client, args.name, args.namespace)
    cluster = _snapshot(args, [body])
    preview = cluster.preview(body)
    if preview.content.docker_config is None:
        raise UsageError("the sources are invalid, nothing to check: " + "; ".join(_source_problems(preview)))
    plain_http = plain_http_servers(RegistryCredentialSpec.model_validate(body.get("spec") or {}))
    checks = []
    for login in logins(preview.content.docker_config):
        _progress(f"checking {login.server}")
        checks.append(check_login(login, utc_now(), args.registry_ca_file, Egress(plain_http=login.server in plain_http)))
    if args.output in ("json", "yaml"):
        _emit([check.model_dump(by_alias=True) for check in checks], args.output, out)
    else:
        _table([("SERVER", "RESULT", "MESSAGE")] + [(c.server, c.result, c.message) for c in checks], out)
    status, _, _ = credentials_condition(checks)
    return 0 if status == "True" else EXIT_CHANGES


# -- create ---------------------------------------------------------------------------
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


def _apply(client: KubeClient, path: str, manifest: JsonObject) -> None:
    client.request(
        "PATCH", path, query={"fieldManager": FIELD_MANAGER}, body=json.dumps(manifest),
        content_type="application/apply-patch+yaml",
    )


def run_create(args: argparse.Namespace, out: TextIO) -> int:
    _check_create_flags(args)
    source_name = f"{args.name}-registry"
    credential = _credential_manifest(args, source_name)
    secret = _source_secret(args, source_name, lambda: sys.stdin.readline().rstrip("\r\n"))
    if not args.apply:
        _emit_all([secret, credential], args.output or "yaml", out)
        return 0
    client = _client(args)
    _apply(client, object_path("v1", "secrets", args.source_namespace, source_name), secret)
    print(f"secret/{source_name} applied in {args.source_namespace}", file=out)
    _apply(client, credential_path(args.name), credential)
    print(f"registrycredential.{API_GROUP}/{args.name} applied", file=out)
    return 0


def _emit_all(documents: Iterable[JsonObject], output: str, out: TextIO) -> None:
    if output == "json":
        _emit({"apiVersion": "v1", "kind": "List", "items": list(documents)}, "json", out)
    else:
        yaml.dump_all(list(documents), out, Dumper=ManifestDumper, sort_keys=False)


# -- command line ---------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Preview, inspect and create RegistryCredentials.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    plan = commands.add_parser("plan", help="what applying RegistryCredential manifests would change (no writes)")
    plan.add_argument("-f", "--filename", required=True, metavar="FILE", help="manifest file, or - for stdin")
    plan.add_argument("--all", action="store_true", help="also list namespaces that stay as they are")
    status = commands.add_parser("status", help="per namespace: replica, ServiceAccounts, problems, failing Pods")
    status.add_argument("name", nargs="?", metavar="NAME", help="one credential (default: all of both kinds)")
    verify = commands.add_parser("verify", help="check a credential's logins against the registries now")
    verify.add_argument("name", metavar="NAME")
    for command in (status, verify):
        command.add_argument(
            "-n", "--namespace", metavar="NS", help="NAME is the TenantRegistryCredential in this namespace"
        )
    for command in (plan, status, verify):
        add_connection_arguments(command)
        add_namespace_arguments(command)
        command.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table")
    plan.set_defaults(handler=run_plan)
    status.set_defaults(handler=run_status)
    verify.set_defaults(handler=run_verify)

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
    add_connection_arguments(create)
    create.add_argument("-o", "--output", choices=("yaml", "json"))
    create.set_defaults(handler=run_create)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args, out or sys.stdout)
    except RegcredError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
