"""Reads: GETs and LISTs of single objects and collections, projected on arrival.

For one-off questions (a 409's re-read, the orphan check, `kubectl regcred`); the
controller's steady view is its informers' caches (`regcred.controller.caches`).
"""

from __future__ import annotations

from regcred.errors import NotFoundError
from regcred.kube.client import JsonObject, KubeClient
from regcred.kube.paths import (
    CREDENTIALS_PATH,
    MANAGED_SECRETS_SELECTOR,
    TENANT_CREDENTIALS_PATH,
    by_credential_key,
    pods_path,
    secrets_path,
    service_accounts_path,
)
from regcred.kube.projections import (
    pod_facts,
    resource_version,
    secret_state,
    service_account_state,
    source_secret,
)
from regcred.planning.plan import SecretState, ServiceAccountState
from regcred.planning.sources import SourceSecret
from regcred.planning.stuckpods import PodFacts

__all__ = [
    "existing_credential_keys",
    "list_credentials",
    "list_pending_pods",
    "list_replicas",
    "list_service_accounts",
    "read_secret_state",
    "read_service_account_state",
    "read_source_secret",
]


def read_secret_state(client: KubeClient, namespace: str, name: str) -> SecretState | None:
    try:
        return secret_state(client.request("GET", secrets_path(namespace, name)))
    except NotFoundError:
        return None


def existing_credential_keys(client: KubeClient) -> set[str]:
    """The keys (see `credential_key`) of every credential of both kinds, asked of the API server."""
    return {by_credential_key(obj) for obj in list_credentials(client)}


def read_source_secret(client: KubeClient, namespace: str, name: str) -> tuple[SourceSecret, str] | None:
    """A source Secret's data, and the resourceVersion it was read at; None when it is gone."""
    try:
        obj = client.request("GET", secrets_path(namespace, name))
    except NotFoundError:
        return None
    return source_secret(obj), resource_version(obj)


def read_service_account_state(client: KubeClient, namespace: str, name: str) -> ServiceAccountState | None:
    try:
        return service_account_state(client.request("GET", service_accounts_path(namespace, name)))
    except NotFoundError:
        return None


def list_credentials(client: KubeClient) -> list[JsonObject]:
    """Every RegistryCredential and TenantRegistryCredential; none of a kind whose CRD is gone."""
    found: list[JsonObject] = []
    for path in (CREDENTIALS_PATH, TENANT_CREDENTIALS_PATH):
        try:
            found += client.request("GET", path).get("items", [])
        except NotFoundError:
            continue
    return found



def list_replicas(client: KubeClient, namespace: str | None = None) -> list[SecretState]:
    """The Secrets the operator made (its labels), in one namespace or all."""
    listed = client.request("GET", secrets_path(namespace), query={"labelSelector": MANAGED_SECRETS_SELECTOR})
    return [secret_state(item) for item in listed.get("items", [])]


def list_service_accounts(client: KubeClient, namespace: str | None = None) -> list[ServiceAccountState]:
    """The ServiceAccounts of one namespace or all (no selector can find the annotation)."""
    listed = client.request("GET", service_accounts_path(namespace))
    return [service_account_state(item) for item in listed.get("items", [])]


def list_pending_pods(client: KubeClient, namespace: str | None = None) -> list[PodFacts]:
    """The Pods in phase Pending (of one namespace, or all): their containers have not all started.

    A Pod that never pulled its image stays Pending, so the field selector lets the API
    server drop every running Pod before it is sent.
    """
    found = client.request("GET", pods_path(namespace), query={"fieldSelector": "status.phase=Pending"})
    return [pod_facts(item) for item in found.get("items", [])]
