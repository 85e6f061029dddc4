"""Which namespaces a RegistryCredential targets, and who wins a contested secret name.

Pure: the caller passes names and labels; nothing here talks to the API server.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

from regcred.models import LabelSelector, LabelSelectorRequirement, RegistryCredentialSpec

__all__ = [
    "DEFAULT_ALWAYS_EXCLUDED",
    "Claimant",
    "NamespaceInfo",
    "claim_winner",
    "matches_any_glob",
    "matches_label_selector",
    "selects_namespace",
    "target_namespaces",
    "within_tenant",
]

# Namespaces a pull secret has no business in unless the operator is told otherwise.
DEFAULT_ALWAYS_EXCLUDED = frozenset({"kube-system", "kube-public", "kube-node-lease"})


@dataclass(frozen=True)
class NamespaceInfo:
    """What selection needs to know of a namespace."""

    name: str
    labels: Mapping[str, str]
    terminating: bool = False


@dataclass(frozen=True, order=True)
class Claimant:
    """A credential that wants a secret name; the smallest wins: cluster-scoped before
    tenant-owned (a tenant cannot take a name the platform uses), then oldest, then by name."""

    tenant_owned: bool
    creation_timestamp: str  # RFC 3339 in UTC, so string order is time order
    name: str


def _requirement_holds(requirement: LabelSelectorRequirement, labels: Mapping[str, str]) -> bool:
    present = requirement.key in labels
    match requirement.operator:
        case "In":
            return present and labels[requirement.key] in requirement.values
        case "NotIn":
            return not present or labels[requirement.key] not in requirement.values
        case "Exists":
            return present
        case "DoesNotExist":
            return not present
    raise AssertionError(f"unknown operator {requirement.operator}")  # the model forbids it


def matches_label_selector(selector: LabelSelector | None, labels: Mapping[str, str]) -> bool:
    """Kubernetes LabelSelector semantics; an omitted or empty selector matches everything."""
    if selector is None:
        return True
    if any(labels.get(key) != value for key, value in selector.match_labels.items()):
        return False
    return all(_requirement_holds(req, labels) for req in selector.match_expressions)


def matches_any_glob(name: str, globs: Iterable[str]) -> bool:
    """True when a `*`/`?` glob matches the whole name."""
    return any(fnmatchcase(name, glob) for glob in globs)


def selects_namespace(
    spec: RegistryCredentialSpec, namespace: NamespaceInfo, always_excluded: frozenset[str]
) -> bool:
    """Whether the credential should have a replica in this namespace."""
    if namespace.terminating or namespace.name in always_excluded:
        return False
    if spec.namespaces is not None and not matches_any_glob(namespace.name, spec.namespaces):
        return False
    if matches_any_glob(namespace.name, spec.exclude_namespaces):
        return False
    return matches_label_selector(spec.namespace_selector, namespace.labels)


def within_tenant(
    tenant_label: str | None, home: NamespaceInfo | None, home_name: str, namespace: NamespaceInfo
) -> bool:
    """Whether a tenant-owned credential living in `home_name` may serve `namespace`.

    Its own namespace always; others only when the operator has a tenant label and both
    namespaces carry the same non-empty value of it. Nothing in the credential's spec
    can widen this.
    """
    if namespace.name == home_name:
        return True
    if tenant_label is None or home is None:
        return False
    tenant = home.labels.get(tenant_label)
    return bool(tenant) and namespace.labels.get(tenant_label) == tenant


def target_namespaces(
    spec: RegistryCredentialSpec,
    namespaces: Iterable[NamespaceInfo],
    always_excluded: frozenset[str] = DEFAULT_ALWAYS_EXCLUDED,
) -> frozenset[str]:
    """The names of every namespace the credential selects."""
    return frozenset(ns.name for ns in namespaces if selects_namespace(spec, ns, always_excluded))


def claim_winner(claimants: Iterable[Claimant]) -> Claimant | None:
    """The claimant that keeps a contested secret name: oldest, then lowest name."""
    return min(claimants, default=None)
