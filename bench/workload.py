"""What the benchmark asks of the operator, and how it tells that the cluster got there.

One RegistryCredential selects every namespace labelled `TENANT_LABEL`, builds its
replica from a password in a source Secret, and adds the replica to each `default`
ServiceAccount. The expected content hash comes from the operator's own pure
planning code, so "replica current" means exactly what the operator means by it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

from bench import go_floor
from bench.cluster import (
    OPERATOR_NAMESPACE,
    Timing,
    list_all,
    merge_patch,
    run_concurrently,
    secret_body,
)
from regcred.errors import NotFoundError
from regcred.kube.client import JsonObject, KubeClient
from regcred.models import API_GROUP, API_VERSION, KIND, PLURAL, TENANT_KIND, TENANT_PLURAL, RegistryCredentialSpec
from regcred.planning.plan import CONTENT_HASH_ANNOTATION, CREDENTIAL_LABEL
from regcred.planning.sources import (
    DOCKER_CONFIG_KEY,
    DOCKER_CONFIG_TYPE,
    SourceSecret,
    resolve_content,
)

__all__ = [
    "CREDENTIAL",
    "CREDENTIALS_PATH",
    "REPLICAS_SELECTOR",
    "REPLICA_NAME",
    "TENANT_NAMESPACE",
    "USERNAME",
    "Wanted",
    "WantedReplica",
    "accounts_patched",
    "apply_credential",
    "cleaned_up",
    "create_namespaces",
    "create_source",
    "create_tenant",
    "credential_exists",
    "default_accounts_exist",
    "delete_credential",
    "delete_source",
    "delete_tenant",
    "everywhere",
    "expected_content",
    "floor_secret",
    "go_floor_plan",
    "has_replica_entry",
    "is_current_replica",
    "lists_secret",
    "python_floor",
    "replica_content",
    "replicas_current",
    "reset_floor",
    "rotate_source",
    "tenant_served",
]

CREDENTIAL = "bench"
REPLICA_NAME = "bench-pull"
FLOOR_SECRET_NAME = "bench-floor-pull"
GO_FLOOR_SECRET_NAME = "bench-gofloor-pull"
SOURCE_SECRET = "bench-registry"
TENANT_LABEL = "bench.regcred.dev/tenant"
USERNAME = b"robot-bench"
CREDENTIALS_PATH = f"/apis/{API_GROUP}/{API_VERSION}/{PLURAL}"
# The replicas the observer watches: the credential's, and the floor's Secrets.
REPLICAS_SELECTOR = f"{CREDENTIAL_LABEL}={CREDENTIAL}"

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


def replica_content(
    spec: dict[str, Any], source: str, username: bytes, password: bytes
) -> tuple[bytes, str]:
    """A replica's .dockerconfigjson and content hash, as the operator's planning makes them, for
    `spec` with its one source Secret `source` holding `username` and `password`."""
    secret = SourceSecret(
        OPERATOR_NAMESPACE, source, "Opaque", {"username": username, "password": password}
    )
    content = resolve_content(
        RegistryCredentialSpec.model_validate(spec),
        {(OPERATOR_NAMESPACE, source): secret},
        default_namespace=OPERATOR_NAMESPACE,
        allowed_namespaces=frozenset({OPERATOR_NAMESPACE}),
    )
    assert content.docker_config is not None and content.content_hash is not None, content.problems
    return content.docker_config, content.content_hash


def expected_content(generation: int) -> tuple[bytes, str]:
    """The replica's .dockerconfigjson and content hash for the source's `generation`th password."""
    return replica_content(SPEC, SOURCE_SECRET, USERNAME, password(generation))


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


# -- a tenant and its TenantRegistryCredential ----------------------------------------
TENANT_NAMESPACE = "bench-tenant"
TENANT_CREDENTIAL = "bench-tenant-pull"
TENANT_SOURCE = "bench-tenant-robot"
TENANT_CREDENTIAL_PATH = f"/apis/{API_GROUP}/{API_VERSION}/namespaces/{TENANT_NAMESPACE}/{TENANT_PLURAL}"


def create_tenant(kube: KubeClient) -> None:
    """A tenant's namespace, its password Secret and its TenantRegistryCredential (copied into
    that namespace): the operator then watches the namespace's Secrets as sources."""
    kube.request("POST", "/api/v1/namespaces", body={"metadata": {"name": TENANT_NAMESPACE}})
    body = secret_body(TENANT_SOURCE, {"username": USERNAME, "password": password(0)})
    kube.request("POST", f"/api/v1/namespaces/{TENANT_NAMESPACE}/secrets", body=body)
    credential = {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": TENANT_KIND,
        "metadata": {"name": TENANT_CREDENTIAL, "namespace": TENANT_NAMESPACE},
        "spec": {
            "registries": [
                {"server": "registry.bench.example:5000", "passwordSecretRef": {"name": TENANT_SOURCE}}
            ],
            "namespaces": [TENANT_NAMESPACE],
        },
    }
    kube.request("POST", TENANT_CREDENTIAL_PATH, body=credential)


def tenant_served(kube: KubeClient) -> bool:
    """Whether the tenant credential's copy is in its namespace."""
    try:
        kube.request("GET", f"/api/v1/namespaces/{TENANT_NAMESPACE}/secrets/{TENANT_CREDENTIAL}")
    except NotFoundError:
        return False
    return True


def delete_tenant(kube: KubeClient) -> None:
    """Its credential (the operator, running, removes the finalizer), then the namespace."""
    kube.request("DELETE", f"{TENANT_CREDENTIAL_PATH}/{TENANT_CREDENTIAL}")
    kube.request("DELETE", f"/api/v1/namespaces/{TENANT_NAMESPACE}")


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


class WantedReplica(NamedTuple):
    """What one namespace should hold: a replica of this name, with this content."""

    secret_name: str
    content_hash: str


# Per namespace, the replica it should hold; None where the observer expects nothing.
Wanted = Callable[[str], WantedReplica | None]


def everywhere(content_hash: str) -> Wanted:
    """The one credential's replica, with this content, in whatever namespace is asked about."""
    wanted = WantedReplica(REPLICA_NAME, content_hash)
    return lambda namespace: wanted


def is_current_replica(secret: JsonObject, wanted: WantedReplica | None) -> bool:
    meta = secret["metadata"]
    return (
        wanted is not None
        and meta["name"] == wanted.secret_name
        and (meta.get("annotations") or {}).get(CONTENT_HASH_ANNOTATION) == wanted.content_hash
    )


def lists_secret(account: JsonObject, wanted: WantedReplica | None) -> bool:
    """The ServiceAccount's imagePullSecrets name the wanted replica."""
    return wanted is not None and any(
        ref.get("name") == wanted.secret_name for ref in account.get("imagePullSecrets") or ()
    )


def has_replica_entry(account: JsonObject) -> bool:
    return lists_secret(account, WantedReplica(REPLICA_NAME, ""))


def replicas_current(
    kube: KubeClient, namespaces: Iterable[str], wanted: Wanted, selector: str
) -> bool:
    """Every namespace holds its wanted replica (one labelled list, no per-object reads)."""
    secrets = list_all(kube, "/api/v1/secrets", labelSelector=selector)
    current = {
        s["metadata"]["namespace"]
        for s in secrets
        if is_current_replica(s, wanted(s["metadata"]["namespace"]))
    }
    return set(namespaces) <= current


def accounts_patched(kube: KubeClient, namespaces: Iterable[str], wanted: Wanted) -> bool:
    """Every namespace's `default` ServiceAccount lists its wanted replica."""
    accounts = list_all(kube, "/api/v1/serviceaccounts", fieldSelector="metadata.name=default")
    patched = {
        a["metadata"]["namespace"]
        for a in accounts
        if lists_secret(a, wanted(a["metadata"]["namespace"]))
    }
    return set(namespaces) <= patched


# -- the floor: exactly the writes the scenario needs, nothing else ---------------
def floor_secret(name: str, credential: str, content: tuple[bytes, str]) -> JsonObject:
    """The floor's stand-in for a credential's replica, with `content` (docker config, hash)."""
    docker_config, content_hash = content
    # As large as a replica and seen by the same label-selected watch, so observing the
    # floor costs what observing the operator does; without the managed-by label the
    # operator never takes it for a replica.
    return secret_body(
        name,
        {DOCKER_CONFIG_KEY: docker_config},
        DOCKER_CONFIG_TYPE,
        labels={CREDENTIAL_LABEL: credential},
        annotations={CONTENT_HASH_ANNOTATION: content_hash},
    )


def _floor_secret(generation: int) -> JsonObject:
    return floor_secret(FLOOR_SECRET_NAME, CREDENTIAL, expected_content(generation))


def python_floor(
    kubeconfig: Path, namespaces: Iterable[str], concurrency: int
) -> tuple[Timing, Timing]:
    """The Python floor's fan-out (one Secret create and one ServiceAccount patch per
    namespace), then its rotation (one Secret update per namespace), in a process of its
    own at `concurrency`; the wall and CPU seconds of each."""
    names = list(namespaces)
    plan = go_floor.Plan()
    created = plan.body("fan-out", _floor_secret(0))
    updated = plan.body("rotation", _floor_secret(1))
    listed = plan.body("account", {"imagePullSecrets": [{"name": FLOOR_SECRET_NAME}]})
    plan.scenario(
        "fan-out",
        ([go_floor.create_secret(ns, created), go_floor.patch_account(ns, listed)] for ns in names),
    )
    plan.scenario("rotation", ([go_floor.update_secret(ns, updated)] for ns in names))
    results, _ = go_floor.run_program(
        go_floor.python_floor_program(), kubeconfig, plan, (concurrency,), 0
    )
    timings = {result.scenario: Timing(result.seconds, result.cpu_seconds) for result in results}
    return timings["fan-out"], timings["rotation"]


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


def go_floor_plan(namespaces: Iterable[str]) -> go_floor.Plan:
    """The Go floor's writes: the Python floor's, under a Secret name of its own.

    Its ServiceAccount patch replaces the Python floor's entry (a real change, so the
    API server writes it), and its reset, untimed, deletes its Secret and puts that entry
    back: each concurrency, and then the operator, starts from the cluster the Python
    floor left.
    """
    names = list(namespaces)
    plan = go_floor.Plan()
    created = plan.body(
        "fan-out", floor_secret(GO_FLOOR_SECRET_NAME, CREDENTIAL, expected_content(0))
    )
    updated = plan.body(
        "rotation", floor_secret(GO_FLOOR_SECRET_NAME, CREDENTIAL, expected_content(1))
    )
    listed = plan.body("account", {"imagePullSecrets": [{"name": GO_FLOOR_SECRET_NAME}]})
    restored = plan.body("restore", {"imagePullSecrets": [{"name": FLOOR_SECRET_NAME}]})
    plan.scenario(
        "fan-out",
        ([go_floor.create_secret(ns, created), go_floor.patch_account(ns, listed)] for ns in names),
    )
    plan.scenario("rotation", ([go_floor.update_secret(ns, updated)] for ns in names))
    plan.scenario(
        "reset",
        (
            [
                go_floor.delete_secret(ns, GO_FLOOR_SECRET_NAME),
                go_floor.patch_account(ns, restored),
            ]
            for ns in names
        ),
        timed=False,
    )
    return plan
