"""What the operator would do for a RegistryCredential manifest, planned from a ClusterState."""

from __future__ import annotations

from dataclasses import dataclass

from regcred.config import OperatorConfig
from regcred.controller.clock import utc_now
from regcred.controller.gather import Scope, intent, namespace_view, namespaces_touched, resolve
from regcred.controller.state import ClusterState
from regcred.errors import InvalidSpecError
from regcred.kube.client import JsonObject
from regcred.kube.paths import credential_key
from regcred.kube.projections import CredentialRecord, credential_record
from regcred.models import TENANT_KIND
from regcred.planning.plan import NamespacePlan, plan_namespace
from regcred.planning.sources import ResolvedContent

__all__ = ["Preview", "preview", "record_for_preview"]


@dataclass(frozen=True)
class Preview:
    """A dry run of one credential: its content (or source problems) and every touched namespace's plan."""

    credential: str
    namespace: str | None  # a TenantRegistryCredential's namespace
    secret_name: str
    exists: bool
    content: ResolvedContent
    plans: tuple[NamespacePlan, ...]


def record_for_preview(state: ClusterState, body: JsonObject) -> CredentialRecord:
    """The manifest as the controller would hold it; one not yet in the cluster is its newest claimant."""
    name = body.get("metadata", {}).get("name")
    if not name:
        raise InvalidSpecError("metadata.name: required")
    namespace = body.get("metadata", {}).get("namespace") if body.get("kind") == TENANT_KIND else None
    if body.get("kind") == TENANT_KIND and not namespace:
        raise InvalidSpecError(f"metadata.namespace: required for a {TENANT_KIND}")
    live = state.credential(credential_key(namespace, name))
    metadata = {
        "name": name,
        "namespace": namespace,
        "uid": live.uid if live else "",
        "generation": 1,
        "creationTimestamp": live.creation_timestamp if live else utc_now(),
    }
    record = credential_record({"metadata": metadata, "spec": body.get("spec")})
    if not record.usable:
        raise InvalidSpecError(record.problem or "spec: invalid")
    return record


def preview(state: ClusterState, config: OperatorConfig, body: JsonObject) -> Preview:
    """Every plan the operator would make for `body` now. Reads and writes nothing."""
    record = record_for_preview(state, body)
    assert record.secret_name is not None
    content = resolve(state, record, config)
    wanted = intent(record, content)
    scope = Scope.of(config)
    plans = tuple(
        plan_namespace(namespace_view(state, record, namespace, scope), wanted)
        for namespace in sorted(namespaces_touched(state, record, scope))
    )
    live = state.credential(record.key)
    return Preview(record.name, record.namespace, record.secret_name, live is not None, content, plans)
