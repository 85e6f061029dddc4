"""The RegistryCredential and TenantRegistryCredential API as pydantic models, validated once at the edge.

The CRD in ``crds/`` is the first line of validation (admission); these models
mirror it so that objects that bypass admission (older CRD versions, tests,
the kubectl plugin) get the same answers. ``tests/unit/test_crd_agreement.py``
keeps the two in step.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.alias_generators import to_camel

__all__ = [
    "API_GROUP",
    "Condition",
    "NamespaceIssue",
    "RegistryCredentialStatus",
    "RegistryOverride",
    "API_VERSION",
    "FINALIZER",
    "KIND",
    "PLURAL",
    "DockerConfigSecretRef",
    "LabelSelector",
    "LabelSelectorRequirement",
    "NamespaceGlob",
    "PasswordSecretRef",
    "Registry",
    "RegistryCredentialSpec",
    "TENANT_KIND",
    "TENANT_PLURAL",
    "TenantRegistryCredentialSpec",
]

API_GROUP = "regcred.dev"
API_VERSION = "v1alpha1"
KIND = "RegistryCredential"
PLURAL = "registrycredentials"
# The namespaced kind a tenant creates in one of its namespaces: the same spec, with
# every source Secret read from that namespace.
TENANT_KIND = "TenantRegistryCredential"
TENANT_PLURAL = "tenantregistrycredentials"
# kopf holds it on both kinds; the controller writes nothing for a credential without it.
FINALIZER = f"{API_GROUP}/cleanup"

MAX_REGISTRIES = 32
MAX_DOCKER_CONFIG_REFS = 16
MAX_GLOBS = 64
MAX_SERVICE_ACCOUNT_PATTERNS = 32

# A DNS-1123 subdomain: what Kubernetes accepts as a Secret name.
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# A DNS-1123 label: namespace names.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# A namespace name in which `*` (any run) and `?` (one character) may stand.
NAMESPACE_GLOB_PATTERN = r"^[a-z0-9*?]([-a-z0-9*?]*[a-z0-9*?])?$"
# A ServiceAccount name (DNS-1123 subdomain) in which `*` and `?` may stand.
SERVICE_ACCOUNT_GLOB_PATTERN = r"^[a-z0-9*?]([-a-z0-9*?.]*[a-z0-9*?])?$"
# host[:port][/path], no scheme: what `docker login` keys its config by.
# An https:// prefix is tolerated because docker's own config files use it.
SERVER_PATTERN = (
    r"^(https?://)?[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*"
    r"(:[0-9]{1,5})?(/[-A-Za-z0-9._~/]*)?$"
)
# Basic auth joins username:password and registries split at the first ':' (RFC 7617
# forbids it in a user-id), so a ':' would silently log in as another user.
USERNAME_PATTERN = r"^[^:\x00-\x1f\x7f]+$"
LABEL_KEY_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"

SecretName = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]
NamespaceName = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)]
NamespaceGlob = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=NAMESPACE_GLOB_PATTERN)]
ServiceAccountGlob = Annotated[
    str, StringConstraints(min_length=1, max_length=253, pattern=SERVICE_ACCOUNT_GLOB_PATTERN)
]
SecretKey = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN)]
LabelKey = Annotated[str, StringConstraints(min_length=1, max_length=317, pattern=LABEL_KEY_PATTERN)]
LabelValue = Annotated[str, StringConstraints(max_length=63, pattern=LABEL_VALUE_PATTERN)]


class _ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class PasswordSecretRef(_ApiModel):
    name: SecretName
    namespace: NamespaceName | None = None
    key: SecretKey = "password"


class Registry(_ApiModel):
    server: Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=SERVER_PATTERN)]
    username: Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=USERNAME_PATTERN)] | None = None
    email: Annotated[str, StringConstraints(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    # Said explicitly, as the API server demands too: spec.verify would send the password in the clear.
    plain_http: bool = Field(default=False, alias="plainHTTP")
    password_secret_ref: PasswordSecretRef

    @model_validator(mode="after")
    def _plain_http_is_explicit(self) -> Registry:
        if self.server.startswith("http://") != self.plain_http:
            raise ValueError(
                "a server starting with http:// needs plainHTTP: true (spec.verify would send the password "
                "in the clear), and plainHTTP: true needs a server starting with http://"
            )
        return self


class DockerConfigSecretRef(_ApiModel):
    name: SecretName
    namespace: NamespaceName | None = None


class LabelSelectorRequirement(_ApiModel):
    key: LabelKey
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[LabelValue] = Field(default_factory=list, max_length=64)

    @model_validator(mode="after")
    def _values_fit_operator(self) -> LabelSelectorRequirement:
        # The same rule the API server applies to LabelSelectors everywhere.
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"operator {self.operator} needs at least one value")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"operator {self.operator} takes no values")
        return self


class LabelSelector(_ApiModel):
    match_labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=64)
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list, max_length=64)


class Verification(_ApiModel):
    """Checking each registry entry against the registry's API (spec.verify)."""

    enabled: bool = False
    interval_minutes: int = Field(default=60, ge=5, le=1440)


class RegistryCredentialSpec(_ApiModel):
    """What a RegistryCredential asks for; see crds/ for the field documentation."""

    secret_name: SecretName | None = None
    registries: list[Registry] = Field(default_factory=list, max_length=MAX_REGISTRIES)
    docker_config_secret_refs: list[DockerConfigSecretRef] = Field(
        default_factory=list, max_length=MAX_DOCKER_CONFIG_REFS
    )
    namespace_selector: LabelSelector | None = None
    namespaces: list[NamespaceGlob] | None = Field(default=None, max_length=MAX_GLOBS)
    exclude_namespaces: list[NamespaceGlob] = Field(default_factory=list, max_length=MAX_GLOBS)
    service_accounts: list[ServiceAccountGlob] = Field(
        default_factory=lambda: ["default"], max_length=MAX_SERVICE_ACCOUNT_PATTERNS
    )
    verify: Verification | None = None
    restart_stuck_pods: bool = False

    @model_validator(mode="after")
    def _has_a_source(self) -> RegistryCredentialSpec:
        if not self.registries and not self.docker_config_secret_refs:
            raise ValueError("at least one of registries or dockerConfigSecretRefs is required")
        return self

    def effective_secret_name(self, credential_name: str) -> str:
        """The replica's name: spec.secretName, else the credential's own name."""
        return self.secret_name or credential_name


class TenantRegistryCredentialSpec(RegistryCredentialSpec):
    """A TenantRegistryCredential's spec: its source Secrets are in its own namespace."""

    @model_validator(mode="after")
    def _sources_in_own_namespace(self) -> TenantRegistryCredentialSpec:
        named = [f"registries[{i}].passwordSecretRef" for i, r in enumerate(self.registries) if r.password_secret_ref.namespace]
        named += [f"dockerConfigSecretRefs[{i}]" for i, r in enumerate(self.docker_config_secret_refs) if r.namespace]
        if named:
            raise ValueError(
                f"{', '.join(named)}: namespace is not allowed; a {TENANT_KIND} reads Secrets from its own namespace"
            )
        return self


class Condition(_ApiModel):
    """A metav1.Condition."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str
    observed_generation: int
    last_transition_time: str


class NamespaceIssue(_ApiModel):
    """Why one namespace is not synced."""

    namespace: str
    reason: str
    message: str


class RegistryOverride(_ApiModel):
    """A registry server named by more than one source, and which source won."""

    server: str
    used: str
    ignored: list[str]


class RegistryCheck(_ApiModel):
    """The last check of one registry entry against its registry (spec.verify)."""

    server: str
    result: Literal[
        "Valid", "Rejected", "Unreachable", "TLSError", "Anonymous", "Unsupported", "Error", "Unconfirmed", "RefusedByPolicy"
    ]
    message: str
    checked_at: str


class RegistryCredentialStatus(_ApiModel):
    """What the operator reports; lists are sorted and capped so status stays small."""

    observed_generation: int | None = None
    secret_name: str | None = None
    content_hash: str | None = None
    matched_namespaces: int = 0
    synced_namespaces: int = 0
    synced: str | None = None
    failed_namespaces: list[NamespaceIssue] = Field(default_factory=list)
    conflicted_namespaces: list[NamespaceIssue] = Field(default_factory=list)
    overridden_registries: list[RegistryOverride] = Field(default_factory=list)
    registry_checks: list[RegistryCheck] = Field(default_factory=list)
    restarted_pods: int = 0
    stuck_pods: list[str] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)
