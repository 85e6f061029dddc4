"""Operator settings: where sources may live, what to skip, how hard to push the API server."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from regcred.models import LABEL_KEY_PATTERN
from regcred.planning.destinations import parse_allow_entry
from regcred.planning.selection import DEFAULT_ALWAYS_EXCLUDED

__all__ = ["DEFAULT_OPERATOR_NAMESPACE", "VARIABLES", "OperatorConfig", "config_from_env", "settings_from_env"]

# Out of cluster there is no pod namespace to default to.
DEFAULT_OPERATOR_NAMESPACE = "regcred-system"
IN_CLUSTER_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


class OperatorConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    operator_namespace: str = DEFAULT_OPERATOR_NAMESPACE
    # Namespaces source Secrets may be read from; empty means the operator's own namespace.
    source_namespaces: frozenset[str] = frozenset()
    # Namespaces never replicated into: the built-in ones plus any given; giving more
    # never makes kube-system and the like selectable.
    excluded_namespaces: frozenset[str] = DEFAULT_ALWAYS_EXCLUDED
    concurrency: int = Field(default=16, ge=1, le=256)
    resync_seconds: float = Field(default=300.0, gt=0)
    # How long a status flush waits for more namespace results before writing.
    status_debounce_seconds: float = Field(default=0.5, ge=0)
    # A CA bundle trusted, besides the system's, when verifying registries (spec.verify).
    registry_ca_file: str | None = None
    # Each watch request's length; liveness fails once a watch is silent for much longer.
    watch_seconds: float = Field(default=300.0, ge=1, le=3600)
    # The namespace label whose value names a namespace's tenant (e.g. Capsule's
    # capsule.clastix.io/tenant). Unset, a TenantRegistryCredential serves only its own namespace.
    tenant_label: str | None = Field(default=None, min_length=1, max_length=317, pattern=LABEL_KEY_PATTERN)
    # Whether TenantRegistryCredentials' spec.verify may make the operator connect anywhere:
    # off, a tenant's check is refused by policy without a packet sent.
    tenant_verify: bool = False
    # Hosts (by name) and networks (CIDR) a tenant's check may reach besides public addresses.
    tenant_verify_allow: tuple[str, ...] = ()

    @field_validator("tenant_verify_allow")
    @classmethod
    def _allow_entries_parse(cls, entries: tuple[str, ...]) -> tuple[str, ...]:
        for entry in entries:
            parse_allow_entry(entry)  # its ValueError names the entry
        return entries

    @field_validator("excluded_namespaces")
    @classmethod
    def _built_in_exclusions_stay(cls, names: frozenset[str]) -> frozenset[str]:
        return names | DEFAULT_ALWAYS_EXCLUDED

    @model_validator(mode="after")
    def _default_sources(self) -> OperatorConfig:
        if not self.source_namespaces:
            object.__setattr__(self, "source_namespaces", frozenset({self.operator_namespace}))
        return self


def _names(value: str) -> frozenset[str]:
    return frozenset(part.strip() for part in value.split(",") if part.strip())


def _sorted_names(value: str) -> tuple[str, ...]:
    return tuple(sorted(_names(value)))


# Each REGCRED_* variable and the OperatorConfig field it sets; lists are comma-separated.
# docs/settings.md is generated from this table and the `regcred run` parser.
VARIABLES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "REGCRED_OPERATOR_NAMESPACE": ("operator_namespace", str),
    "REGCRED_SOURCE_NAMESPACES": ("source_namespaces", _names),
    "REGCRED_EXCLUDED_NAMESPACES": ("excluded_namespaces", _names),
    "REGCRED_CONCURRENCY": ("concurrency", str),
    "REGCRED_RESYNC_SECONDS": ("resync_seconds", str),
    "REGCRED_REGISTRY_CA_FILE": ("registry_ca_file", str),
    "REGCRED_TENANT_LABEL": ("tenant_label", str),
    "REGCRED_TENANT_VERIFY": ("tenant_verify", str),
    "REGCRED_TENANT_VERIFY_ALLOW": ("tenant_verify_allow", _sorted_names),
}


def settings_from_env(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Settings given by REGCRED_* variables and the pod's namespace; absent or empty ones are left out."""
    settings = {field: parse(environ[name]) for name, (field, parse) in VARIABLES.items() if environ.get(name)}
    if "operator_namespace" not in settings:
        namespace = environ.get("POD_NAMESPACE")
        if not namespace and os.path.exists(IN_CLUSTER_NAMESPACE_FILE):
            with open(IN_CLUSTER_NAMESPACE_FILE, encoding="utf-8") as handle:
                namespace = handle.read().strip()
        if namespace:
            settings["operator_namespace"] = namespace
    return settings


def config_from_env() -> OperatorConfig:
    """The configuration for `kopf run -m regcred.handlers`."""
    return OperatorConfig(**settings_from_env())
