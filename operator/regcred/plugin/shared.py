"""What the subcommands share: the usage error, the client, and one snapshot of the cluster.

Plans come from the operator's own planning code over one snapshot of the cluster,
so the preview and the operator cannot disagree.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from regcred.config import OperatorConfig
from regcred.controller.preview import Preview, preview
from regcred.controller.snapshot import load_snapshot
from regcred.controller.state import ClusterSnapshot
from regcred.errors import NotFoundError, RegcredError
from regcred.kube.client import JsonObject, KubeClient, load_api_client
from regcred.kube.resources import credential_path
from regcred.models import API_GROUP, KIND, PLURAL, TENANT_KIND
from regcred.options import add_connection_arguments, add_namespace_arguments, config_from_args
from regcred.planning.preview import NamespaceChange, describe
from regcred.plugin.output import progress

__all__ = [
    "Cluster", "UsageError", "add_reading_arguments", "add_tenant_namespace_argument", "client", "get_credential",
    "identity", "rows", "snapshot", "source_problems", "title",
]


class UsageError(RegcredError):
    """Bad flags or input, found before anything is sent."""


def add_tenant_namespace_argument(command: argparse.ArgumentParser) -> None:
    """`-n NS`: NAME is then a TenantRegistryCredential of that namespace."""
    command.add_argument(
        "-n", "--namespace", metavar="NS", help="NAME is the TenantRegistryCredential in this namespace"
    )


def add_reading_arguments(command: argparse.ArgumentParser) -> None:
    """The flags of a subcommand that reads the cluster as the operator would: where, what, how to print."""
    add_connection_arguments(command)
    add_namespace_arguments(command)
    command.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table")


def client(args: argparse.Namespace) -> KubeClient:
    """A client for the cluster the connection flags name."""
    return KubeClient(load_api_client(args.kubeconfig, args.context))


@dataclass(frozen=True)
class Cluster:
    """One list of everything the operator would watch, and the settings it would plan with."""

    state: ClusterSnapshot
    config: OperatorConfig

    def preview(self, body: JsonObject) -> Preview:
        return preview(self.state, self.config, body)


def _secret_name(body: JsonObject) -> str:
    return str((body.get("spec") or {}).get("secretName") or body.get("metadata", {}).get("name", ""))


def snapshot(args: argparse.Namespace, bodies: list[JsonObject]) -> Cluster:
    """Read the cluster once, as the operator's caches would hold it, for planning `bodies`."""
    try:
        config = config_from_args(args)
    except ValidationError as error:
        raise UsageError(f"invalid settings: {error}") from None
    try:
        state = load_snapshot(
            client(args), config, [_secret_name(body) for body in bodies],
            on_loaded=lambda informer: progress(f"read {len(informer)} {informer.name}"),
        )
    except NotFoundError:
        raise UsageError(f"the {KIND} CRD ({PLURAL}.{API_GROUP}) is not installed in this cluster") from None
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
