"""`kubectl regcred uninstall --yes`: remove every replica and ServiceAccount entry the operator made.

It works whether an operator runs or not, before or after `kubectl delete -k deploy/`
or `helm uninstall` (docs/uninstall.md):

1. every RegistryCredential and TenantRegistryCredential is deleted and loses the
   operator's finalizer, so none waits for an operator that may be gone (and a CRD
   being deleted is no longer held up by them);
2. what any credential left, found as the operator's orphan sweep finds it (replicas by
   their labels, ServiceAccount entries by the records naming their credential), is
   removed with the operator's own plan for a credential that wants nothing.

Everything runs as the caller, whose rights must cover those writes (a cluster admin's do).
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from regcred.controller.gather import leftover_namespaces, leftovers_intent, leftovers_view
from regcred.controller.state import ClusterSnapshot
from regcred.errors import ConflictError
from regcred.kube.client import KubeClient
from regcred.kube.reads import list_credentials, list_replicas, list_service_accounts
from regcred.kube.writes import apply_write, release_credential
from regcred.planning.plan import SecretDelete, ServiceAccountEdit, Write, plan_namespace
from regcred.plugin.output import progress
from regcred.plugin.shared import UsageError, add_plugin_connection_arguments, client

__all__ = ["add_command"]

# Another writer (a running operator) may change an object between read and write.
MAX_ATTEMPTS = 5


def add_command(commands: Any) -> None:
    command = commands.add_parser(
        "uninstall",
        help="delete every credential and remove every replica and ServiceAccount entry the operator made",
    )
    add_plugin_connection_arguments(command)
    command.add_argument(
        "--yes", action="store_true", help="confirm: every RegistryCredential and TenantRegistryCredential is deleted"
    )
    command.set_defaults(handler=run_uninstall)


def _leftovers(kube: KubeClient, namespace: str | None = None) -> ClusterSnapshot:
    """What credentials left (replicas, ServiceAccounts), read now; no credential is left to want anything."""
    return ClusterSnapshot(
        credentials_by_key={},
        namespaces_by_name={},
        replicas=tuple(list_replicas(kube, namespace)),
        service_accounts=tuple(list_service_accounts(kube, namespace)),
        source_secrets={},
    )


def _traces(state: ClusterSnapshot) -> set[str]:
    """The credential keys that replicas' labels or ServiceAccounts' records name."""
    keys = {replica.credential for replica in state.replicas if replica.credential}
    for account in state.service_accounts:
        keys |= account.recording_credentials
    return keys


def _remove(kube: KubeClient, key: str, namespace: str) -> tuple[Write, ...]:
    """Remove what credential `key` left in `namespace`; the writes that did it."""
    intent = leftovers_intent(key, "", key.rpartition("_")[2])
    for _ in range(MAX_ATTEMPTS):
        plan = plan_namespace(leftovers_view(_leftovers(kube, namespace), key, namespace), intent)
        try:
            for write in plan.writes:
                apply_write(kube, write)
        except ConflictError:
            continue  # read again and plan again
        return plan.writes
    raise ConflictError(f"namespace {namespace}: objects kept changing while being cleaned up; run it again")


def run_uninstall(args: argparse.Namespace, out: TextIO) -> int:
    if not args.yes:
        raise UsageError(
            "this deletes every RegistryCredential and TenantRegistryCredential in the cluster and "
            "removes their replicas and ServiceAccount entries; pass --yes to go ahead"
        )
    kube = client(args)
    credentials = list_credentials(kube)
    for credential in credentials:
        for _ in range(MAX_ATTEMPTS):
            try:
                release_credential(kube, credential)
                break
            except ConflictError:
                continue  # the finalizer list is re-read on each attempt
    progress(f"deleted {len(credentials)} credentials without waiting for an operator")
    state = _leftovers(kube)
    writes: list[Write] = []
    for key in sorted(_traces(state)):
        for namespace in sorted(leftover_namespaces(state, key)):
            writes += _remove(kube, key, namespace)
    replicas = sum(isinstance(write, SecretDelete) for write in writes)
    accounts = {(write.namespace, write.name) for write in writes if isinstance(write, ServiceAccountEdit)}
    namespaces = {write.namespace for write in writes}
    print(
        f"removed {replicas} replicas and the entries of {len(accounts)} ServiceAccounts "
        f"in {len(namespaces)} namespaces",
        file=out,
    )
    return 0
