"""What the subcommands share: the usage error, the client, and one snapshot of the cluster.

Plans come from the operator's own planning code over one snapshot of the cluster,
so the preview and the operator cannot disagree.

Whoever may not read the cluster as the operator does (a tenant with `edit` or `admin`
in its own namespaces) gets the same plans over the namespaces it may read, for its
TenantRegistryCredentials only: their own namespace, the namespaces their status names
and, with --tenant-label, the namespaces of their tenant if it may list namespaces.
Cluster-scoped things it may not read (RegistryCredentials, other namespaces) are left
out and said so.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from regcred.config import OperatorConfig
from regcred.controller.preview import Preview, preview
from regcred.controller.snapshot import load_namespaced_snapshot, load_snapshot
from regcred.controller.state import ClusterSnapshot
from regcred.errors import ForbiddenError, NotFoundError, RegcredError
from regcred.kube.client import Impersonation, JsonObject, KubeClient, kubeconfig_impersonation, load_api_client
from regcred.kube.paths import NAMESPACES_PATH, credential_path
from regcred.kube.projections import namespace_info
from regcred.models import API_GROUP, KIND, PLURAL, TENANT_KIND
from regcred.options import add_connection_arguments, add_namespace_arguments, config_from_args
from regcred.planning.preview import NamespaceChange, describe
from regcred.plugin.output import progress

__all__ = [
    "Cluster", "TenantView", "UsageError", "add_plugin_connection_arguments", "add_reading_arguments",
    "add_tenant_namespace_argument", "client", "get_credential", "identity", "rows", "snapshot", "source_problems",
    "status_namespaces", "title",
]


class UsageError(RegcredError):
    """Bad flags or input, found before anything is sent."""


def add_tenant_namespace_argument(command: argparse.ArgumentParser) -> None:
    """`-n NS`: NAME is then a TenantRegistryCredential of that namespace."""
    command.add_argument(
        "-n", "--namespace", metavar="NS", help="NAME is the TenantRegistryCredential in this namespace"
    )


def add_plugin_connection_arguments(command: argparse.ArgumentParser) -> None:
    """--kubeconfig and --context, and kubectl's --as and --as-group (kubectl passes a
    plugin its flags untouched, so the plugin reads them itself)."""
    add_connection_arguments(command)
    command.add_argument("--as", dest="as_user", metavar="USER", help="act as this user (impersonation)")
    command.add_argument(
        "--as-group", action="append", dest="as_groups", metavar="GROUP", help="and this group (repeat; needs --as)"
    )


def add_reading_arguments(command: argparse.ArgumentParser) -> None:
    """The flags of a subcommand that reads the cluster as the operator would: where, what, how to print."""
    add_plugin_connection_arguments(command)
    add_namespace_arguments(command)
    command.add_argument(
        "--tenant-namespace", action="append", dest="tenant_namespaces", metavar="NS", default=[],
        help="with namespace-scoped rights only: another namespace of your tenant to read (repeat; "
        "needed when you may not list namespaces)",
    )
    command.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table")


def client(args: argparse.Namespace) -> KubeClient:
    """A client for the cluster the connection flags name, as the user --as (else the
    kubeconfig user's `as`, as kubectl) names."""
    if args.as_groups and not args.as_user:
        raise UsageError("--as-group needs --as USER")
    if args.as_user:
        impersonate: Impersonation | None = Impersonation(args.as_user, tuple(args.as_groups or ()))
    else:
        impersonate = kubeconfig_impersonation(args.kubeconfig, args.context)
    return KubeClient(load_api_client(args.kubeconfig, args.context), impersonate=impersonate)


@dataclass(frozen=True)
class TenantView:
    """What a view limited to readable namespaces read, and what it had to leave out."""

    namespaces: tuple[str, ...]
    unreadable: tuple[str, ...]
    # The cluster's RegistryCredentials (their claims on secret names) were readable.
    cluster_credentials_read: bool


@dataclass(frozen=True)
class Cluster:
    """One list of everything the operator would watch, and the settings it would plan with."""

    state: ClusterSnapshot
    config: OperatorConfig
    # None: read as the operator reads; else only these namespaces were readable.
    tenant_view: TenantView | None = None

    def preview(self, body: JsonObject) -> Preview:
        return preview(self.state, self.config, body)


def _secret_name(body: JsonObject) -> str:
    return str((body.get("spec") or {}).get("secretName") or body.get("metadata", {}).get("name", ""))


def status_namespaces(body: JsonObject) -> set[str]:
    """The namespaces the operator named in the credential's status."""
    status = body.get("status") or {}
    return {
        issue["namespace"] for issue in status.get("failedNamespaces", []) + status.get("conflictedNamespaces", [])
        if issue.get("namespace")
    }


def _tenant_namespaces(kube: KubeClient, config: OperatorConfig, home: str) -> set[str]:
    """With a tenant label, the namespaces carrying the home namespace's value, if the user
    may list namespaces (else none: it cannot know them)."""
    if config.tenant_label is None:
        return set()
    try:
        value = namespace_info(kube.request("GET", f"{NAMESPACES_PATH}/{home}")).labels.get(config.tenant_label)
        if value is None:
            return set()
        listed = kube.request("GET", NAMESPACES_PATH, query={"labelSelector": f"{config.tenant_label}={value}"})
    except (ForbiddenError, NotFoundError):
        return set()
    return {item["metadata"]["name"] for item in listed.get("items", [])}


def _tenant_snapshot(
    kube: KubeClient, config: OperatorConfig, bodies: list[JsonObject], named: list[str], refused: str
) -> Cluster:
    homes = {body["metadata"]["namespace"] for body in bodies}
    wanted = homes | set(named)
    for body in bodies:
        wanted |= status_namespaces(body)
    for home in homes:
        wanted |= _tenant_namespaces(kube, config, home)
    progress(f"cannot read the cluster as the operator does ({refused}); reading these namespaces only: "
             + ", ".join(sorted(wanted)))
    loaded = load_namespaced_snapshot(
        kube, config, wanted, [_secret_name(body) for body in bodies],
        on_loaded=lambda informer: progress(f"read {len(informer)} {informer.name}"),
    )
    readable = tuple(sorted(wanted - set(loaded.unreadable)))
    if not loaded.cluster_credentials_read:
        progress(f"{KIND}s are not readable: a name one of them holds shows only as the replica it left")
    return Cluster(loaded.state, config, TenantView(readable, loaded.unreadable, loaded.cluster_credentials_read))


def snapshot(args: argparse.Namespace, bodies: list[JsonObject]) -> Cluster:
    """Read the cluster once, as the operator's caches would hold it, for planning `bodies`.

    Refused that, TenantRegistryCredentials are planned over the namespaces the user may read.
    """
    try:
        config = config_from_args(args)
    except ValidationError as error:
        raise UsageError(f"invalid settings: {error}") from None
    kube = client(args)
    try:
        state = load_snapshot(
            kube, config, [_secret_name(body) for body in bodies],
            on_loaded=lambda informer: progress(f"read {len(informer)} {informer.name}"),
        )
    except NotFoundError:
        raise UsageError(f"the {KIND} CRD ({PLURAL}.{API_GROUP}) is not installed in this cluster") from None
    except ForbiddenError as error:
        if not bodies or any(
            body.get("kind") != TENANT_KIND or not body.get("metadata", {}).get("namespace") for body in bodies
        ):
            raise UsageError(
                f"{error}; a {KIND} needs the cluster-wide read the operator has. A tenant names its "
                f"{TENANT_KIND}s with -n NAMESPACE (status) or their metadata.namespace (plan)"
            ) from None
        return _tenant_snapshot(kube, config, bodies, args.tenant_namespaces, str(error))
    return Cluster(state, config)


def rows(cluster: Cluster, preview: Preview) -> list[NamespaceChange]:
    """One row per namespace the preview plans for, as the user reads it."""
    return [
        describe(plan, preview.secret_name, cluster.state.service_accounts_in(plan.namespace))
        for plan in preview.plans
    ]


def source_problems(preview: Preview) -> list[str]:
    return [f"{type(problem).__name__}: {problem}" for problem in preview.content.problems]


def title(namespace: str | None, name: str) -> str:
    """How a credential of either kind is named in output."""
    return f"{KIND} {name}" if namespace is None else f"{TENANT_KIND} {namespace}/{name}"


def identity(preview: Preview) -> dict[str, Any]:
    """The kind, name and (for a tenant's) namespace of a previewed credential, for JSON and YAML."""
    return {
        "kind": KIND if preview.namespace is None else TENANT_KIND,
        "credential": preview.credential,
        **({"namespace": preview.namespace} if preview.namespace else {}),
    }


def get_credential(kube: KubeClient, name: str, namespace: str | None) -> JsonObject:
    """A RegistryCredential, or with a namespace a TenantRegistryCredential, with its kind set."""
    try:
        body = kube.request("GET", credential_path(name, namespace))
    except NotFoundError:
        raise UsageError(f"{title(namespace, name)} not found (or its CRD is not installed)") from None
    return {**body, "kind": KIND if namespace is None else TENANT_KIND}
