"""Projections of API objects into planning's plain types, and the credential as the controller sees it.

Pure functions of one object's JSON: no request is made here.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from regcred.kube.client import JsonObject
from regcred.kube.paths import MAX_KEY_LENGTH, credential_key, credential_path
from regcred.models import (
    API_GROUP,
    API_VERSION,
    FINALIZER,
    KIND,
    TENANT_KIND,
    RegistryCredentialSpec,
    RegistryCredentialStatus,
    TenantRegistryCredentialSpec,
)
from regcred.planning.plan import (
    ADDED_PULL_SECRETS_ANNOTATION,
    CONTENT_HASH_ANNOTATION,
    CREDENTIAL_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    SecretState,
    ServiceAccountState,
    data_digest,
    parse_added_annotation,
)
from regcred.planning.selection import NamespaceInfo
from regcred.planning.sources import SourceSecret
from regcred.planning.stuckpods import PodFacts, PodOwner

__all__ = [
    "CredentialRecord",
    "credential_record",
    "namespace_info",
    "pod_facts",
    "resource_version",
    "secret_metadata_state",
    "secret_state",
    "service_account_state",
    "source_secret",
    "with_known_data",
]


def namespace_info(obj: JsonObject) -> NamespaceInfo:
    meta = obj["metadata"]
    terminating = bool(meta.get("deletionTimestamp")) or obj.get("status", {}).get("phase") == "Terminating"
    return NamespaceInfo(name=meta["name"], labels=dict(meta.get("labels") or {}), terminating=terminating)


def service_account_state(obj: JsonObject) -> ServiceAccountState:
    meta = obj["metadata"]
    return ServiceAccountState(
        namespace=meta["namespace"],
        name=meta["name"],
        resource_version=meta["resourceVersion"],
        image_pull_secrets=tuple(ref.get("name", "") for ref in obj.get("imagePullSecrets") or ()),
        added_by_operator=parse_added_annotation((meta.get("annotations") or {}).get(ADDED_PULL_SECRETS_ANNOTATION)),
    )


def secret_state(obj: JsonObject) -> SecretState:
    """A Secret read whole: a digest of its data, not the data."""
    return replace(
        secret_metadata_state(obj), type=obj.get("type", "Opaque"), digest=data_digest(obj.get("data") or {})
    )


def secret_metadata_state(obj: JsonObject) -> SecretState:
    """A Secret from its metadata alone (a PartialObjectMetadata): type and digest unknown."""
    meta = obj["metadata"]
    labels = meta.get("labels") or {}
    return SecretState(
        namespace=meta["namespace"],
        name=meta["name"],
        resource_version=meta["resourceVersion"],
        type=None,
        managed=labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE,
        credential=labels.get(CREDENTIAL_LABEL),
        content_hash=(meta.get("annotations") or {}).get(CONTENT_HASH_ANNOTATION),
        digest=None,
        credential_owner_uids=frozenset(
            ref.get("uid", "")
            for ref in meta.get("ownerReferences") or ()
            if ref.get("apiVersion", "").split("/")[0] == API_GROUP and ref.get("kind") == KIND
        ),
    )


def with_known_data(cached: SecretState, listed: SecretState) -> SecretState:
    """`listed` (from metadata) keeps the type and digest the cache read at the same version."""
    if listed.digest is not None or cached.resource_version != listed.resource_version:
        return listed
    return replace(listed, type=cached.type, digest=cached.digest)


def resource_version(obj: JsonObject) -> str:
    """An object's resourceVersion: all a metadata cache of source Secrets keeps."""
    return str(obj["metadata"]["resourceVersion"])


def source_secret(obj: JsonObject) -> SourceSecret:
    meta = obj["metadata"]
    data: dict[str, bytes] = {}
    for key, value in (obj.get("data") or {}).items():
        try:
            data[key] = base64.b64decode(value, validate=True)
        except binascii.Error:
            continue  # the API server only stores valid base64; tolerate the impossible
    return SourceSecret(namespace=meta["namespace"], name=meta["name"], type=obj.get("type", "Opaque"), data=data)


def pod_facts(obj: JsonObject) -> PodFacts:
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    controller = next((ref for ref in meta.get("ownerReferences") or () if ref.get("controller")), None)
    statuses = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
    return PodFacts(
        namespace=meta["namespace"],
        name=meta["name"],
        uid=meta["uid"],
        resource_version=meta["resourceVersion"],
        owner=PodOwner(controller["apiVersion"], controller["kind"], controller["name"], controller["uid"])
        if controller
        else None,
        service_account=spec.get("serviceAccountName") or "default",
        image_pull_secrets=tuple(ref.get("name", "") for ref in spec.get("imagePullSecrets") or ()),
        waiting_reasons=tuple(
            waiting["reason"]
            for container in statuses
            if (waiting := (container.get("state") or {}).get("waiting")) and waiting.get("reason")
        ),
        deleting=bool(meta.get("deletionTimestamp")),
    )


@dataclass(frozen=True)
class CredentialRecord:
    """A RegistryCredential as the controller needs it.

    `spec` is None when it fails validation; `refusal` says why a credential with a valid
    spec is not served (its key does not fit a label). Either way the credential does no
    work but cleanup, and cleanup goes by its key alone.
    """

    name: str
    uid: str
    generation: int
    creation_timestamp: str
    deleting: bool
    spec: RegistryCredentialSpec | None
    spec_error: str | None
    status: RegistryCredentialStatus | None = field(compare=False)
    # Where a TenantRegistryCredential lives; None for a (cluster-scoped) RegistryCredential.
    namespace: str | None = None
    refusal: str | None = None
    # Whether kopf's finalizer is on it: no write may precede it, or a delete could orphan it.
    finalized: bool = True

    @property
    def usable(self) -> bool:
        """Whether the credential is served: a valid spec, and nothing refused about it."""
        return self.spec is not None and self.refusal is None

    @property
    def problem(self) -> str | None:
        """Why the credential is not served, None when it is."""
        return self.spec_error or self.refusal

    @property
    def secret_name(self) -> str | None:
        """The name of its copies; None when it is not served (it claims no name then)."""
        return self.spec.effective_secret_name(self.name) if self.spec and self.usable else None

    @property
    def key(self) -> str:
        return credential_key(self.namespace, self.name)

    @property
    def tenant_owned(self) -> bool:
        return self.namespace is not None

    @property
    def kind(self) -> str:
        return TENANT_KIND if self.tenant_owned else KIND

    @property
    def path(self) -> str:
        return credential_path(self.name, self.namespace)

    @property
    def reference(self) -> dict[str, Any]:
        """An ObjectReference to the credential, for Events about it."""
        reference = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": self.kind, "name": self.name, "uid": self.uid}
        return reference if self.namespace is None else {**reference, "namespace": self.namespace}


def _validation_summary(error: ValidationError) -> str:
    # Field paths and pydantic's messages only: input values could be secret-looking strings.
    parts = []
    for problem in error.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in problem["loc"]) or "spec"
        parts.append(f"spec.{where}: {problem['msg']}")
    return "; ".join(parts)


def credential_record(obj: JsonObject) -> CredentialRecord:
    """A RegistryCredential, or a TenantRegistryCredential (the one with a namespace)."""
    meta = obj["metadata"]
    namespace = meta.get("namespace")
    model = RegistryCredentialSpec if namespace is None else TenantRegistryCredentialSpec
    spec: RegistryCredentialSpec | None = None
    spec_error: str | None = None
    try:
        spec = model.model_validate(obj.get("spec") or {})
    except ValidationError as error:
        spec_error = _validation_summary(error)
    refusal = None
    if len(credential_key(namespace, meta["name"])) > MAX_KEY_LENGTH:
        refusal = (
            f"metadata: the namespace and name together are {len(namespace or '') + len(meta['name'])} "
            f"characters; at most {MAX_KEY_LENGTH - 1} fit the regcred.dev/credential label of the copies"
        )
    try:
        status = RegistryCredentialStatus.model_validate(obj["status"]) if obj.get("status") else None
    except ValidationError:
        status = None  # written by an older version or by hand: rebuilt on the next flush
    return CredentialRecord(
        name=meta["name"],
        uid=meta["uid"],
        generation=int(meta.get("generation") or 1),
        creation_timestamp=meta.get("creationTimestamp", ""),
        deleting=bool(meta.get("deletionTimestamp")),
        spec=spec,
        spec_error=spec_error,
        status=status,
        namespace=namespace,
        refusal=refusal,
        finalized=FINALIZER in (meta.get("finalizers") or ()),
    )
