"""Where the operator's objects live: REST paths, credential keys, label selectors, its field manager.

The only module that knows the REST paths of the resources we touch; the others ask it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from regcred.kube.client import object_path
from regcred.models import API_GROUP, API_VERSION, PLURAL, TENANT_PLURAL
from regcred.planning.plan import CREDENTIAL_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE

__all__ = [
    "CREDENTIALS_PATH",
    "FIELD_MANAGER",
    "MANAGED_SECRETS_SELECTOR",
    "MAX_KEY_LENGTH",
    "NAMESPACES_PATH",
    "SERVICE_ACCOUNTS_PATH",
    "TENANT_CREDENTIALS_PATH",
    "by_credential_key",
    "credential_key",
    "credential_path",
    "pods_path",
    "secrets_path",
    "service_accounts_path",
]

FIELD_MANAGER = "regcred-operator"
MANAGED_SECRETS_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE},{CREDENTIAL_LABEL}"
NAMESPACES_PATH = "/api/v1/namespaces"
SERVICE_ACCOUNTS_PATH = "/api/v1/serviceaccounts"
CREDENTIALS_PATH = object_path(f"{API_GROUP}/{API_VERSION}", PLURAL)
TENANT_CREDENTIALS_PATH = object_path(f"{API_GROUP}/{API_VERSION}", TENANT_PLURAL)
# A label value holds at most 63 characters; replicas carry the credential's key in one.
MAX_KEY_LENGTH = 63


def secrets_path(namespace: str | None = None, name: str | None = None) -> str:
    return object_path("v1", "secrets", namespace, name)


def credential_path(name: str, namespace: str | None = None) -> str:
    """A RegistryCredential's path; with a namespace, that TenantRegistryCredential's."""
    plural = PLURAL if namespace is None else TENANT_PLURAL
    return object_path(f"{API_GROUP}/{API_VERSION}", plural, namespace, name)


def credential_key(namespace: str | None, name: str) -> str:
    """How the operator names a credential of either kind, in its replicas' label too.

    A RegistryCredential is its name; a TenantRegistryCredential is `namespace_name`.
    Kubernetes names never hold `_`, so the two kinds cannot collide.
    """
    return name if namespace is None else f"{namespace}_{name}"


def by_credential_key(obj: Mapping[str, Any]) -> str:
    meta = obj["metadata"]
    return credential_key(meta.get("namespace"), meta["name"])


def pods_path(namespace: str | None = None, name: str | None = None) -> str:
    return object_path("v1", "pods", namespace, name)


def service_accounts_path(namespace: str | None = None, name: str | None = None) -> str:
    return object_path("v1", "serviceaccounts", namespace, name)
