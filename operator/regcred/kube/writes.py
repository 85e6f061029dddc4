"""Writes: the planned Secret and ServiceAccount writes, Pod deletes, status, Events, releasing a credential.

Each write is conditional on what was read (a resourceVersion, a uid) wherever the API
server allows it, so a concurrent change raises `ConflictError` instead of being lost.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from typing import Any

from regcred.errors import KubeError, NotFoundError
from regcred.kube.client import MERGE_PATCH, STRATEGIC_MERGE_PATCH, JsonObject, KubeClient, object_path
from regcred.kube.paths import (
    FIELD_MANAGER,
    credential_path,
    pods_path,
    secrets_path,
    service_accounts_path,
)
from regcred.kube.projections import CredentialRecord
from regcred.models import FINALIZER
from regcred.planning.caps import MAX_EVENT_MESSAGE_CHARS, capped_text
from regcred.planning.plan import (
    ADDED_PULL_SECRETS_ANNOTATION,
    SecretCreate,
    SecretDelete,
    SecretUpdate,
    ServiceAccountEdit,
    format_added_annotation,
)
from regcred.planning.stuckpods import PodFacts

__all__ = [
    "apply_write",
    "delete_pod",
    "patch_credential_status",
    "post_event",
    "release_credential",
]

log = logging.getLogger(__name__)

EVENTS_NAMESPACE = "default"  # where Events about cluster-scoped objects go


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
                service_accounts_path(write.namespace, write.name),
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
