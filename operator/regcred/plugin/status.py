"""`kubectl regcred status [NAME]`: per namespace, whether the replica and ServiceAccount entries are in place.

Also why not, and which Pods fail to pull for want of a pull secret (including Pods
stuck since before their ServiceAccount listed it).
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from regcred.controller.preview import Preview
from regcred.errors import ForbiddenError, InvalidSpecError, NotFoundError
from regcred.kube.client import JsonObject, KubeClient, object_path
from regcred.kube.paths import CREDENTIALS_PATH, TENANT_CREDENTIALS_PATH
from regcred.kube.reads import list_pending_pods
from regcred.models import API_GROUP, API_VERSION, KIND, TENANT_KIND, TENANT_PLURAL
from regcred.planning.preview import NamespaceChange, pull_failure
from regcred.planning.stuckpods import PodFacts, plan_stuck_pods, stuck_pod_problems
from regcred.plugin.output import emit, table
from regcred.plugin.shared import (
    Cluster,
    UsageError,
    add_reading_arguments,
    add_tenant_namespace_argument,
    client,
    get_credential,
    identity,
    rows,
    snapshot,
    source_problems,
    status_namespaces,
    title,
)

__all__ = ["add_command", "run_status"]


def add_command(commands: Any) -> None:
    status = commands.add_parser("status", help="per namespace: replica, ServiceAccounts, problems, failing Pods")
    status.add_argument(
        "name", nargs="?", metavar="NAME",
        help="one credential (default: all of both kinds; with -n, that namespace's TenantRegistryCredentials)",
    )
    add_tenant_namespace_argument(status)
    add_reading_arguments(status)
    status.set_defaults(handler=run_status)


def _replica_state(row: NamespaceChange) -> str:
    if row.outcome == "Conflict":
        return "conflict"
    return {"": "current", "create": "missing", "update": "outdated", "recreate": "outdated"}.get(
        row.replica.split(",", 1)[0], "leftover"
    )


def _pod_events(kube: KubeClient, namespaces: set[str], per_namespace: bool) -> list[JsonObject]:
    """Pod Events: one cluster-wide list, or (for a tenant's view) one list in each namespace."""
    query = {"fieldSelector": "involvedObject.kind=Pod"}
    if not per_namespace:
        return list(kube.request("GET", "/api/v1/events", query=query).get("items", []))
    return [
        event for namespace in sorted(namespaces)
        for event in kube.request("GET", object_path("v1", "events", namespace), query=query).get("items", [])
    ]


def _pods_failing_to_pull(events: list[JsonObject], namespaces: set[str]) -> dict[str, dict[str, str]]:
    """Per namespace and Pod, the problem of Pods whose latest event is a pull-secret or pull-auth failure."""
    latest: dict[tuple[str, str], JsonObject] = {}
    for event in events:
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
    cluster: Cluster, pending: list[PodFacts], secret_name: str, namespaces: set[str]
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


def _status_rows(cluster: Cluster, body: JsonObject) -> tuple[Preview, list[dict[str, Any]]]:
    preview = cluster.preview(body)
    status = body.get("status") or {}
    reported = {
        issue["namespace"]: issue.get("reason", "")
        for issue in status.get("failedNamespaces", []) + status.get("conflictedNamespaces", [])
    }
    found = []
    for row in rows(cluster, preview):
        if row.outcome == "Untargeted" and not row.changes:
            continue
        missing = sorted({entry.split("+", 1)[0] for entry in row.service_accounts if "+" in entry})
        found.append({
            "namespace": row.namespace,
            "replica": _replica_state(row),
            "serviceAccounts": "patched" if not missing else "missing: " + ",".join(missing),
            "problem": reported.get(row.namespace) or row.reason or None,
        })
    return preview, found


def _credentials_in(kube: KubeClient, namespace: str) -> list[JsonObject]:
    """The TenantRegistryCredentials of one namespace."""
    listed = kube.request("GET", object_path(f"{API_GROUP}/{API_VERSION}", TENANT_PLURAL, namespace))
    return [{**body, "kind": TENANT_KIND} for body in listed.get("items", [])]


def _all_credentials(kube: KubeClient) -> list[JsonObject]:
    """Every credential of both kinds (a cluster without the tenant CRD has none of that kind)."""
    try:
        listed = kube.request("GET", CREDENTIALS_PATH)
    except ForbiddenError as error:
        raise UsageError(f"{error}; a tenant lists its TenantRegistryCredentials with -n NAMESPACE") from None
    bodies = [{**body, "kind": KIND} for body in listed.get("items", [])]
    try:
        tenant_owned = kube.request("GET", TENANT_CREDENTIALS_PATH).get("items", [])
    except NotFoundError:
        tenant_owned = []
    return bodies + [{**body, "kind": TENANT_KIND} for body in tenant_owned]


def _credentials(kube: KubeClient, args: argparse.Namespace) -> list[JsonObject]:
    if args.name:
        return [get_credential(kube, args.name, args.namespace)]
    if args.namespace:
        return _credentials_in(kube, args.namespace)
    return _all_credentials(kube)


def run_status(args: argparse.Namespace, out: TextIO) -> int:
    kube = client(args)
    bodies = _credentials(kube, args)
    if not bodies:
        print("no credentials" + (f" in {args.namespace}" if args.namespace else ""), file=out)
        return 0
    cluster = snapshot(args, bodies)
    view = cluster.tenant_view
    reports = []
    for body in bodies:
        try:
            preview, namespace_rows = _status_rows(cluster, body)
        except InvalidSpecError as error:
            meta = body["metadata"]
            where = {"namespace": meta["namespace"]} if meta.get("namespace") else {}
            reports.append({"kind": body["kind"], "credential": meta["name"], **where, "invalid": str(error),
                            "namespaces": []})
            continue
        report = {**identity(preview), "secretName": preview.secret_name,
                  "sourceProblems": source_problems(preview), "namespaces": namespace_rows}
        if view is not None:
            # What the operator counted, beside the rows of the namespaces this user may read.
            report["synced"] = (body.get("status") or {}).get("synced")
            report["notShown"] = list(view.unreadable)
        reports.append(report)
    namespaces = {row["namespace"] for r in reports for row in r["namespaces"]}
    failing = _pods_failing_to_pull(_pod_events(kube, namespaces, view is not None), namespaces)
    if view is not None:
        pending = [pod for namespace in sorted(namespaces) for pod in list_pending_pods(kube, namespace)]
    else:
        pending = list_pending_pods(kube) if namespaces else []
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
        emit(reports, args.output, out)
        return 0
    for report in reports:
        print(f"{title(report.get('namespace'), report['credential'])}:", file=out)
        if "invalid" in report:
            print(f"  invalid spec: {report['invalid']}", file=out)
            continue
        for problem in report["sourceProblems"]:
            print(f"  source problem: {problem}", file=out)
        if view is not None:
            print(f"  synced (as the operator counts): {report['synced'] or '-'}; "
                  "rows: the namespaces you may read", file=out)
            if report["notShown"]:
                print(f"  not shown (you may not read them): {', '.join(report['notShown'])}", file=out)
        if report["namespaces"]:
            table(
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
