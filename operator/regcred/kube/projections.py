"""Projections of API objects into planning's plain types, and the writes that apply a plan.

The only module that knows REST paths and object layouts of the resources we touch.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from regcred.errors import KubeError, NotFoundError
from regcred.kube.client import MERGE_PATCH, STRATEGIC_MERGE_PATCH, JsonObject, KubeClient, object_path
from pydantic import ValidationError

from regcred.models import (
    API_GROUP,
    API_VERSION,
    FINALIZER,
    KIND,
    PLURAL,
    TENANT_KIND,
    TENANT_PLURAL,
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
    SecretCreate,
    SecretDelete,
    SecretState,
    SecretUpdate,
    ServiceAccountEdit,
    ServiceAccountState,
    data_digest,
    format_added_annotation,
    parse_added_annotation,
)
from regcred.planning.caps import MAX_EVENT_MESSAGE_CHARS, capped_text
from regcred.planning.selection import NamespaceInfo
from regcred.planning.sources import SourceSecret
from regcred.planning.stuckpods import PodFacts, PodOwner

__all__ = [
    "CREDENTIALS_PATH",
    "TENANT_CREDENTIALS_PATH",
    "CredentialRecord",
    "by_credential_key",
    "credential_exists",
    "credential_key",
    "credential_record",
    "FIELD_MANAGER",
    "MANAGED_SECRETS_SELECTOR",
    "NAMESPACES_PATH",
    "SERVICE_ACCOUNTS_PATH",
    "apply_write",
    "credential_path",
    "delete_pod",
    "list_credentials",
    "list_pending_pods",
    "list_replicas",
    "list_service_accounts",
    "namespace_info",
    "patch_credential_status",
    "pod_facts",
    "post_event",
    "read_secret_state",
    "read_service_account_state",
    "read_source_secret",
    "release_credential",
    "resource_version",
    "secret_metadata_state",
    "secret_state",
    "secrets_path",
    "service_account_state",
    "source_secret",
    "with_known_data",
]

log = logging.getLogger(__name__)

FIELD_MANAGER = "regcred-operator"
MANAGED_SECRETS_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE},{CREDENTIAL_LABEL}"
NAMESPACES_PATH = "/api/v1/namespaces"
SERVICE_ACCOUNTS_PATH = "/api/v1/serviceaccounts"
CREDENTIALS_PATH = object_path(f"{API_GROUP}/{API_VERSION}", PLURAL)
TENANT_CREDENTIALS_PATH = object_path(f"{API_GROUP}/{API_VERSION}", TENANT_PLURAL)
# A label value holds at most 63 characters; replicas carry the credential's key in one.
MAX_KEY_LENGTH = 63
EVENTS_NAMESPACE = "default"  # where Events about cluster-scoped objects go


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


# -- projections ---------------------------------------------------------------
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


# -- reads ---------------------------------------------------------------------
def read_secret_state(client: KubeClient, namespace: str, name: str) -> SecretState | None:
    try:
        return secret_state(client.request("GET", secrets_path(namespace, name)))
    except NotFoundError:
        return None


def credential_exists(client: KubeClient, key: str) -> bool:
    """Whether the credential with this key (see `credential_key`) exists, asked of the API server."""
    namespace, _, name = key.rpartition("_")
    try:
        client.request("GET", credential_path(name, namespace or None))
    except NotFoundError:
        return False
    return True


def read_source_secret(client: KubeClient, namespace: str, name: str) -> tuple[SourceSecret, str] | None:
    """A source Secret's data, and the resourceVersion it was read at; None when it is gone."""
    try:
        obj = client.request("GET", secrets_path(namespace, name))
    except NotFoundError:
        return None
    return source_secret(obj), resource_version(obj)


def read_service_account_state(client: KubeClient, namespace: str, name: str) -> ServiceAccountState | None:
    try:
        return service_account_state(
            client.request("GET", object_path("v1", "serviceaccounts", namespace, name))
        )
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


def release_credential(client: KubeClient, obj: JsonObject) -> None:
    """Delete a credential and take the operator's finalizer off it, so it goes without cleanup.

    Other writers' finalizers stay. Conditional on the resourceVersion read (409 if it moved on).
    """
    meta = obj["metadata"]
    path = credential_path(meta["name"], meta.get("namespace"))
    try:
        if not meta.get("deletionTimestamp"):
            client.request("DELETE", path)
        finalizers = meta.get("finalizers") or []
        if FINALIZER in finalizers:
            current = client.request("GET", path)["metadata"]
            kept = [name for name in current.get("finalizers") or [] if name != FINALIZER]
            patch = {"metadata": {"resourceVersion": current["resourceVersion"], "finalizers": kept or None}}
            client.request("PATCH", path, body=patch, content_type=MERGE_PATCH)
    except NotFoundError:
        return  # gone already: what was wanted


def list_replicas(client: KubeClient, namespace: str | None = None) -> list[SecretState]:
    """The Secrets the operator made (its labels), in one namespace or all."""
    listed = client.request("GET", secrets_path(namespace), query={"labelSelector": MANAGED_SECRETS_SELECTOR})
    return [secret_state(item) for item in listed.get("items", [])]


def list_service_accounts(client: KubeClient, namespace: str | None = None) -> list[ServiceAccountState]:
    """The ServiceAccounts of one namespace or all (no selector can find the annotation)."""
    listed = client.request("GET", object_path("v1", "serviceaccounts", namespace))
    return [service_account_state(item) for item in listed.get("items", [])]


def list_pending_pods(client: KubeClient, namespace: str | None = None) -> list[PodFacts]:
    """The Pods in phase Pending (of one namespace, or all): their containers have not all started.

    A Pod that never pulled its image stays Pending, so the field selector lets the API
    server drop every running Pod before it is sent.
    """
    found = client.request("GET", pods_path(namespace), query={"fieldSelector": "status.phase=Pending"})
    return [pod_facts(item) for item in found.get("items", [])]


# -- writes --------------------------------------------------------------------
def _replica_patch(write: SecretUpdate) -> dict[str, Any]:
    """A strategic merge patch that sets only what the replica manifest sets.

    Labels and annotations merge by key and ownerReferences by uid, so other writers'
    entries (and finalizers, which are not mentioned) stay. `data` is ours whole:
    `$patch: replace` drops keys added by hand. The resourceVersion makes the API
    server refuse the patch with 409 if the Secret changed since it was read.
    """
    metadata = write.manifest["metadata"]
    displaced = [{"$patch": "delete", "uid": uid} for uid in sorted(write.displaced_owners)]
    return {
        "metadata": {
            "resourceVersion": write.resource_version,
            "labels": metadata["labels"],
            "annotations": metadata["annotations"],
            "ownerReferences": [*metadata["ownerReferences"], *displaced],
        },
        "data": {"$patch": "replace", **write.manifest["data"]},
    }


def apply_write(client: KubeClient, write: SecretCreate | SecretUpdate | SecretDelete | ServiceAccountEdit) -> JsonObject | None:
    """Perform one planned write; returns the written object (None for deletes).

    Every write but create is conditional on the resourceVersion it was planned
    from, so a concurrent change raises `ConflictError` instead of being lost.
    """
    query = {"fieldManager": FIELD_MANAGER}
    match write:
        case SecretCreate():
            return client.request("POST", secrets_path(write.namespace), query=query, body=write.manifest)
        case SecretUpdate():
            return client.request(
                "PATCH",
                secrets_path(write.namespace, write.name),
                query=query,
                body=_replica_patch(write),
                content_type=STRATEGIC_MERGE_PATCH,
            )
        case SecretDelete():
            # Gone already is the wanted end state.
            _delete_unchanged(
                client, secrets_path(write.namespace, write.name), resourceVersion=write.resource_version
            )
            return None
        case ServiceAccountEdit():
            patch = {
                "metadata": {
                    # Merge patch with a resourceVersion is a precondition: 409 if it moved on.
                    "resourceVersion": write.resource_version,
                    "annotations": {
                        ADDED_PULL_SECRETS_ANNOTATION: format_added_annotation(write.added_by_operator)
                    },
                },
                # The list is atomic: we send it whole, as read plus our change.
                "imagePullSecrets": [{"name": name} for name in write.image_pull_secrets] or None,
            }
            return client.request(
                "PATCH",
                object_path("v1", "serviceaccounts", write.namespace, write.name),
                query=query,
                body=patch,
                content_type=MERGE_PATCH,
            )
    raise TypeError(f"unknown write {type(write).__name__}")


def delete_pod(client: KubeClient, pod: PodFacts) -> bool:
    """Delete this very Pod: a Pod recreated under its name (a new uid), or one changed since
    it was read (ConflictError), is left alone. False when it was gone already."""
    return _delete_unchanged(
        client, pods_path(pod.namespace, pod.name), uid=pod.uid, resourceVersion=pod.resource_version
    )


def _delete_unchanged(client: KubeClient, path: str, **preconditions: str) -> bool:
    """DELETE `path` only if the object still matches `preconditions` (409 otherwise).

    False when it was gone already.
    """
    body = {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": preconditions}
    try:
        client.request("DELETE", path, body=body)
    except NotFoundError:
        return False
    return True


def patch_credential_status(client: KubeClient, record: CredentialRecord, status: Mapping[str, Any]) -> JsonObject:
    """Replace the credential's status (the whole of it: lists and conditions are ours)."""
    return client.request(
        "PATCH",
        record.path + "/status",
        query={"fieldManager": FIELD_MANAGER},
        body={"status": dict(status)},
        content_type=MERGE_PATCH,
    )


def post_event(
    client: KubeClient, regarding: Mapping[str, Any], event_type: str, reason: str, message: str
) -> None:
    """A core/v1 Event about the object `regarding` (an ObjectReference).

    It goes to that object's namespace; Events about cluster-scoped objects go to `default`.
    """
    namespace = regarding.get("namespace") or EVENTS_NAMESPACE
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{regarding['name']}.", "namespace": namespace},
        "involvedObject": dict(regarding),
        "type": event_type,
        "reason": reason,
        "message": capped_text(message, MAX_EVENT_MESSAGE_CHARS),
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "source": {"component": FIELD_MANAGER},
        "reportingComponent": FIELD_MANAGER,
    }
    try:
        client.request("POST", object_path("v1", "events", namespace), body=body)
    except KubeError as error:  # an Event is best effort; never fail a reconcile on it
        log.warning(
            "could not post event %s for %s %s: %s", reason, regarding["kind"], regarding["name"], error
        )
