"""What other controllers put on replicas and ServiceAccounts survives the operator's writes."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client
from objects import docker_config, has_default_sa, pull_secret_names, replica, tenant_spec

from regcred.controller.work import SyncCredential
from regcred.errors import ConflictError
from regcred.kube.client import KubeClient, load_api_client
from regcred.kube.writes import apply_write
from regcred.models import API_GROUP, API_VERSION, KIND, PLURAL
from regcred.planning.plan import CredentialIntent, SecretUpdate, credential_owner, replica_manifest

FOREIGN_FINALIZER = "example.com/keep-until-audited"
FOREIGN_LABELS = {"team": "payments"}
FOREIGN_ANNOTATIONS = {"example.com/audited-by": "someone-else"}


@pytest.fixture
def foreign_finalizers(cluster) -> Iterator[list[tuple[str, str]]]:
    """Secrets given our foreign finalizer; it is taken off again so their namespaces can go."""
    marked: list[tuple[str, str]] = []
    yield marked
    for namespace, name in marked:
        try:
            cluster.core.patch_namespaced_secret(name, namespace, {"metadata": {"finalizers": None}})
        except client.ApiException as error:
            if error.status != 404:
                raise


def add_foreign_metadata(cluster, namespace: str, name: str, owner: client.V1ConfigMap) -> None:
    """What another controller might add to a replica: a finalizer, a label, an annotation, an owner."""
    secret = cluster.core.read_namespaced_secret(name, namespace)
    meta = secret.metadata
    meta.finalizers = [*(meta.finalizers or []), FOREIGN_FINALIZER]
    meta.labels = {**meta.labels, **FOREIGN_LABELS}
    meta.annotations = {**meta.annotations, **FOREIGN_ANNOTATIONS}
    meta.owner_references = [
        *meta.owner_references,
        client.V1OwnerReference(
            api_version="v1", kind="ConfigMap", name=owner.metadata.name, uid=owner.metadata.uid
        ),
    ]
    cluster.core.replace_namespaced_secret(name, namespace, secret)


def assert_foreign_metadata_kept(
    secret: client.V1Secret, owner: client.V1ConfigMap, credential: dict
) -> None:
    """The foreign metadata is all there, next to ours."""
    meta = secret.metadata
    assert FOREIGN_FINALIZER in (meta.finalizers or [])
    assert FOREIGN_LABELS.items() <= meta.labels.items()
    assert FOREIGN_ANNOTATIONS.items() <= meta.annotations.items()
    assert {(ref.kind, ref.uid) for ref in meta.owner_references} == {
        ("ConfigMap", owner.metadata.uid),
        ("RegistryCredential", credential["metadata"]["uid"]),
    }
    assert meta.labels["regcred.dev/credential"] == credential["metadata"]["name"]


def wait_converged(operator, wait_for) -> None:
    wait_for(lambda: operator.controller.wait_idle(1.0), what="the operator to go idle")


def test_foreign_metadata_on_a_replica_survives_rotation_and_drift_repair(
    cluster, make_namespace, credentials, sources, wait_for, running_operator, foreign_finalizers
):
    tenant = uuid.uuid4().hex[:8]
    namespace = make_namespace("keep", labels={"tenant": tenant})
    source = sources.create({"password": "first-password"})
    name = credentials.create(tenant_spec(tenant, source))
    credentials.wait_ready(name)
    wait_for(lambda: replica(cluster, namespace, name), what="replica")
    # A foreign owner must exist: the garbage collector deletes objects whose owners are all gone.
    owner = cluster.core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="audit-owner"))
    )
    foreign_finalizers.append((namespace, name))
    add_foreign_metadata(cluster, namespace, name, owner)
    first_hash = replica(cluster, namespace, name).metadata.annotations["regcred.dev/content-hash"]

    sources.replace_data(source, {"password": "second-password"})
    wait_for(
        lambda: b"second-password" in docker_config(replica(cluster, namespace, name)),
        what="rotation to reach the replica",
    )
    rotated = replica(cluster, namespace, name)
    assert rotated.metadata.annotations["regcred.dev/content-hash"] != first_hash
    assert_foreign_metadata_kept(rotated, owner, credentials.get(name))

    # Drift: the data edited by hand, with a key the operator never wrote.
    cluster.core.patch_namespaced_secret(
        name, namespace, {"data": {".dockerconfigjson": base64.b64encode(b"{}").decode(), "extra": "eA=="}}
    )

    def repaired() -> bool:
        secret = replica(cluster, namespace, name)
        return set(secret.data) == {".dockerconfigjson"} and b"second-password" in docker_config(secret)

    wait_for(repaired, what="the hand-edited replica to be repaired")
    assert_foreign_metadata_kept(replica(cluster, namespace, name), owner, credentials.get(name))

    # Foreign metadata is no reason to write: a converged pass writes nothing.
    wait_converged(running_operator, wait_for)
    writes = running_operator.controller.stats.writes
    version = replica(cluster, namespace, name).metadata.resource_version
    running_operator.controller.queue.add(SyncCredential(name))
    time.sleep(1)
    wait_converged(running_operator, wait_for)
    assert running_operator.controller.stats.writes == writes
    assert replica(cluster, namespace, name).metadata.resource_version == version


def test_foreign_entries_and_labels_on_a_service_account_survive_adding_and_removing_ours(
    cluster, make_namespace, credentials, sources, wait_for
):
    tenant = uuid.uuid4().hex[:8]
    namespace = make_namespace("keep-sa", labels={"tenant": tenant})
    wait_for(lambda: has_default_sa(cluster, namespace), what="default ServiceAccount")
    cluster.core.create_namespaced_service_account(
        namespace,
        client.V1ServiceAccount(
            metadata=client.V1ObjectMeta(
                name="builder", labels=FOREIGN_LABELS, annotations=FOREIGN_ANNOTATIONS
            ),
            image_pull_secrets=[client.V1LocalObjectReference(name="zeta")],
        ),
    )
    source = sources.create({"password": "pw"})
    name = credentials.create(tenant_spec(tenant, source, serviceAccounts=["builder"]))
    credentials.wait_ready(name)
    wait_for(
        lambda: pull_secret_names(cluster, namespace, "builder") == ["zeta", name],
        what="our entry added",
    )

    # Another writer adds an entry while ours is there; removing ours must not lose it.
    cluster.core.patch_namespaced_service_account(
        "builder", namespace, [{"op": "add", "path": "/imagePullSecrets/-", "value": {"name": "yank"}}]
    )
    credentials.patch_spec(name, {"serviceAccounts": ["somebody-else"]})
    wait_for(
        lambda: pull_secret_names(cluster, namespace, "builder") == ["zeta", "yank"],
        what="our entry removed",
    )

    account = cluster.core.read_namespaced_service_account("builder", namespace)
    assert FOREIGN_LABELS.items() <= account.metadata.labels.items()
    assert account.metadata.annotations == FOREIGN_ANNOTATIONS  # and our record of the entry is gone


def test_an_update_takes_a_copy_over_from_another_credential_and_refuses_a_stale_read(
    cluster, operator, make_namespace, foreign_finalizers
):
    # The operator stays out: this drives one write by hand (the next test restarts it).
    operator.stop()
    namespace = make_namespace("takeover")
    credentials = [
        cluster.custom.create_cluster_custom_object(
            API_GROUP, API_VERSION, PLURAL,
            {
                "apiVersion": f"{API_GROUP}/{API_VERSION}",
                "kind": KIND,
                "metadata": {"name": f"cred-{uuid.uuid4().hex[:8]}"},
                "spec": tenant_spec(f"nobody-{uuid.uuid4().hex[:8]}", "unused"),
            },
        )
        for _ in range(2)
    ]
    try:
        former, taker = (
            {"name": c["metadata"]["name"], "uid": c["metadata"]["uid"]}
            for c in credentials
        )
        owner = cluster.core.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="audit-owner"))
        )
        config = b'{"auths":{}}'
        manifest = replica_manifest(
            CredentialIntent(
                taker["name"], taker["uid"], "pull", ("default",), config, "sha256:new",
                owner=credential_owner(KIND, taker["name"], taker["uid"]),
            ),
            namespace,
        )
        # The copy as the former credential left it, plus what another controller added.
        copy = {
            **manifest,
            "metadata": {
                **manifest["metadata"],
                "labels": {**manifest["metadata"]["labels"], "regcred.dev/credential": former["name"]},
                "annotations": {"regcred.dev/content-hash": "sha256:old"},
                "finalizers": [FOREIGN_FINALIZER],
                "ownerReferences": [
                    {**manifest["metadata"]["ownerReferences"][0], **former},
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "name": "audit-owner",
                        "uid": owner.metadata.uid,
                    },
                ],
            },
            "data": {".dockerconfigjson": base64.b64encode(b"{}").decode(), "extra": "eA=="},
        }
        read = cluster.core.create_namespaced_secret(namespace, copy)
        foreign_finalizers.append((namespace, "pull"))
        edited = cluster.core.patch_namespaced_secret(
            "pull", namespace, {"metadata": {"labels": FOREIGN_LABELS, "annotations": FOREIGN_ANNOTATIONS}}
        )
        kube = KubeClient(load_api_client(str(cluster.kubeconfig)))

        def update(resource_version: str) -> SecretUpdate:
            return SecretUpdate(namespace, "pull", resource_version, manifest, frozenset({former["uid"]}))

        with pytest.raises(ConflictError):
            apply_write(kube, update(read.metadata.resource_version))
        apply_write(kube, update(edited.metadata.resource_version))

        secret = cluster.core.read_namespaced_secret("pull", namespace)
        meta = secret.metadata
        assert secret.data == manifest["data"]
        assert meta.labels == {**manifest["metadata"]["labels"], **FOREIGN_LABELS}
        assert meta.annotations == {"regcred.dev/content-hash": "sha256:new", **FOREIGN_ANNOTATIONS}
        assert meta.finalizers == [FOREIGN_FINALIZER]
        assert sorted((ref.kind, ref.uid, bool(ref.controller)) for ref in meta.owner_references) == [
            ("ConfigMap", owner.metadata.uid, False),
            (KIND, taker["uid"], True),
        ]
    finally:
        for credential in credentials:
            cluster.custom.delete_cluster_custom_object(
                API_GROUP, API_VERSION, PLURAL, credential["metadata"]["name"]
            )
