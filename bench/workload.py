"""What the benchmark asks of the operator, and how it tells that the cluster got there.

One RegistryCredential selects every namespace labelled `TENANT_LABEL`, builds its
replica from a password in a source Secret, and adds the replica to each `default`
ServiceAccount. The expected content hash comes from the operator's own pure
planning code, so "replica current" means exactly what the operator means by it.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable

from bench.cluster import OPERATOR_NAMESPACE, list_all, merge_patch, run_concurrently, secret_body
from regcred.kube.client import JsonObject, KubeClient
from regcred.models import API_GROUP, API_VERSION, KIND, PLURAL, RegistryCredentialSpec
from regcred.planning.plan import CONTENT_HASH_ANNOTATION, CREDENTIAL_LABEL
from regcred.planning.sources import (
    DOCKER_CONFIG_KEY,
    DOCKER_CONFIG_TYPE,
    SourceSecret,
    resolve_content,
)

__all__ = [
    "CREDENTIAL",
    "REPLICA_NAME",
    "accounts_patched",
    "apply_credential",
    "cleaned_up",
    "create_namespaces",
    "create_source",
    "credential_exists",
    "default_accounts_exist",
    "delete_credential",
    "delete_source",
    "expected_content",
    "floor_fan_out",
    "floor_rotation",
    "has_replica_entry",
    "is_current_replica",
    "replicas_current",
    "reset_floor",
    "rotate_source",
]

CREDENTIAL = "bench"
REPLICA_NAME = "bench-pull"
FLOOR_SECRET_NAME = "bench-floor-pull"
SOURCE_SECRET = "bench-registry"
TENANT_LABEL = "bench.regcred.dev/tenant"
USERNAME = b"robot-bench"
CREDENTIALS_PATH = f"/apis/{API_GROUP}/{API_VERSION}/{PLURAL}"

SPEC = {
    "secretName": REPLICA_NAME,
    "registries": [
        {"server": "registry.bench.example:5000", "passwordSecretRef": {"name": SOURCE_SECRET}}
    ],
    "namespaceSelector": {"matchLabels": {TENANT_LABEL: "yes"}},
    "serviceAccounts": ["default"],
}


def password(generation: int) -> bytes:
    return f"bench-password-{generation:04d}".encode()


def expected_content(generation: int) -> tuple[bytes, str]:
    """The replica's .dockerconfigjson and content hash for the source's `generation`th password."""
    source = SourceSecret(
        OPERATOR_NAMESPACE,
        SOURCE_SECRET,
        "Opaque",
        {"username": USERNAME, "password": password(generation)},
    )
    content = resolve_content(
        RegistryCredentialSpec.model_validate(SPEC),
        {(OPERATOR_NAMESPACE, SOURCE_SECRET): source},
        default_namespace=OPERATOR_NAMESPACE,
        allowed_namespaces=frozenset({OPERATOR_NAMESPACE}),
    )
    assert content.docker_config is not None and content.content_hash is not None, content.problems
    return content.docker_config, content.content_hash


# -- setting up ----------------------------------------------------------------
def create_source(kube: KubeClient) -> None:
    body = secret_body(SOURCE_SECRET, {"username": USERNAME, "password": password(0)})
    kube.request("POST", f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/secrets", body=body)


def delete_source(kube: KubeClient) -> None:
    kube.request("DELETE", f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/secrets/{SOURCE_SECRET}")


def rotate_source(kube: KubeClient, generation: int) -> None:
    secret = f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/secrets/{SOURCE_SECRET}"
    merge_patch(
        kube, secret, {"data": {"password": base64.b64encode(password(generation)).decode()}}
    )


def apply_credential(kube: KubeClient) -> None:
    body = {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": KIND,
        "metadata": {"name": CREDENTIAL},
        "spec": SPEC,
    }
    kube.request("POST", CREDENTIALS_PATH, body=body)


def delete_credential(kube: KubeClient) -> None:
    kube.request("DELETE", f"{CREDENTIALS_PATH}/{CREDENTIAL}")


def credential_exists(kube: KubeClient) -> bool:
    return any(item["metadata"]["name"] == CREDENTIAL for item in list_all(kube, CREDENTIALS_PATH))


def create_namespaces(kube: KubeClient, names: Iterable[str], concurrency: int) -> float:
    """Create selected namespaces; returns the seconds taken."""

    def create(name: str) -> None:
        kube.request(
            "POST",
            "/api/v1/namespaces",
            body={"metadata": {"name": name, "labels": {TENANT_LABEL: "yes"}}},
        )

    return run_concurrently(create, names, concurrency)


def default_accounts_exist(kube: KubeClient, namespaces: frozenset[str]) -> bool:
    accounts = list_all(kube, "/api/v1/serviceaccounts", fieldSelector="metadata.name=default")
    return namespaces <= {account["metadata"]["namespace"] for account in accounts}


# -- what "done" means -----------------------------------------------------------
def cleaned_up(kube: KubeClient) -> bool:
    """No replica and no ServiceAccount entry is left of the credential."""
    secrets = list_all(kube, "/api/v1/secrets", labelSelector=f"{CREDENTIAL_LABEL}={CREDENTIAL}")
    accounts = list_all(kube, "/api/v1/serviceaccounts", fieldSelector="metadata.name=default")
    replicas = [secret for secret in secrets if secret["metadata"]["name"] == REPLICA_NAME]
    return not replicas and not any(has_replica_entry(account) for account in accounts)


def is_current_replica(secret: JsonObject, content_hash: str) -> bool:
    meta = secret["metadata"]
    return (
        meta["name"] == REPLICA_NAME
        and (meta.get("annotations") or {}).get(CONTENT_HASH_ANNOTATION) == content_hash
    )


def has_replica_entry(account: JsonObject) -> bool:
    return any(ref.get("name") == REPLICA_NAME for ref in account.get("imagePullSecrets") or ())


def replicas_current(kube: KubeClient, namespaces: frozenset[str], content_hash: str) -> bool:
    """Every namespace holds the replica with this content (one labelled list, no per-object reads)."""
    secrets = list_all(kube, "/api/v1/secrets", labelSelector=f"{CREDENTIAL_LABEL}={CREDENTIAL}")
    return namespaces <= {
        s["metadata"]["namespace"] for s in secrets if is_current_replica(s, content_hash)
    }


def accounts_patched(kube: KubeClient, namespaces: frozenset[str]) -> bool:
    """Every namespace's `default` ServiceAccount lists the replica."""
    accounts = list_all(kube, "/api/v1/serviceaccounts", fieldSelector="metadata.name=default")
    return namespaces <= {a["metadata"]["namespace"] for a in accounts if has_replica_entry(a)}


# -- the floor: exactly the writes the scenario needs, nothing else ---------------
def _floor_secret(generation: int) -> JsonObject:
    docker_config, content_hash = expected_content(generation)
    # As large as a replica and seen by the same label-selected watch, so observing the
    # floor costs what observing the operator does; without the managed-by label the
    # operator never takes it for a replica.
    return secret_body(
        FLOOR_SECRET_NAME,
        {DOCKER_CONFIG_KEY: docker_config},
        DOCKER_CONFIG_TYPE,
        labels={CREDENTIAL_LABEL: CREDENTIAL},
        annotations={CONTENT_HASH_ANNOTATION: content_hash},
    )


def floor_fan_out(kube: KubeClient, namespaces: Iterable[str], concurrency: int) -> float:
    """One Secret create and one ServiceAccount patch per namespace; returns the seconds taken."""
    body = _floor_secret(0)
    account_patch = {"imagePullSecrets": [{"name": FLOOR_SECRET_NAME}]}

    def write(namespace: str) -> None:
        kube.request("POST", f"/api/v1/namespaces/{namespace}/secrets", body=body)
        merge_patch(kube, f"/api/v1/namespaces/{namespace}/serviceaccounts/default", account_patch)

    return run_concurrently(write, namespaces, concurrency)


def reset_floor(kube: KubeClient, namespaces: Iterable[str], concurrency: int) -> None:
    """Undo the floor's writes (untimed) so that its fan-out can be timed again."""

    def undo(namespace: str) -> None:
        kube.request("DELETE", f"/api/v1/namespaces/{namespace}/secrets/{FLOOR_SECRET_NAME}")
        # The operator's clean-up left only the floor's entry.
        merge_patch(
            kube,
            f"/api/v1/namespaces/{namespace}/serviceaccounts/default",
            {"imagePullSecrets": None},
        )

    run_concurrently(undo, namespaces, concurrency)


def floor_rotation(kube: KubeClient, namespaces: Iterable[str], concurrency: int) -> float:
    """One Secret update per namespace; returns the seconds taken."""
    body = _floor_secret(1)

    def write(namespace: str) -> None:
        kube.request(
            "PUT", f"/api/v1/namespaces/{namespace}/secrets/{FLOOR_SECRET_NAME}", body=body
        )

    return run_concurrently(write, namespaces, concurrency)
