"""The replica Secret and the ServiceAccount entries, end to end against the real API server."""

from __future__ import annotations

import base64
import json
import uuid

from kubernetes import client
from objects import SERVER, docker_config, has_default_sa, pull_secret_names, replica, tenant_spec


def test_replica_matches_kubectl_and_carries_only_our_metadata(
    cluster, kubectl, make_namespace, credentials, sources, wait_for
):
    tenant = uuid.uuid4().hex[:8]
    namespace = make_namespace("acme", labels={"tenant": tenant})
    password = f"pw-{uuid.uuid4().hex}"
    source = sources.create({"password": password})
    name = credentials.create(
        tenant_spec(tenant, source, secretName="acme-pull"),
        metadata={
            "labels": {"app.kubernetes.io/instance": "platform", "team": "infra"},
            "annotations": {"argocd.argoproj.io/sync-wave": "5", "note": "from git"},
        },
    )
    credentials.wait_ready(name)
    secret = wait_for(lambda: replica(cluster, namespace, "acme-pull"), what="replica")

    expected = kubectl(
        "create", "secret", "docker-registry", "acme-pull", f"--docker-server={SERVER}",
        "--docker-username=robot-ci", f"--docker-password={password}",
        "--docker-email=ci@acme.example", "--dry-run=client", "-o", "json",
    ).stdout
    expected_config = base64.b64decode(json.loads(expected)["data"][".dockerconfigjson"])
    assert docker_config(secret) == expected_config
    assert secret.type == "kubernetes.io/dockerconfigjson"

    body = credentials.get(name)
    assert secret.metadata.labels == {
        "app.kubernetes.io/managed-by": "regcred-operator",
        "regcred.dev/credential": name,
    }
    assert set(secret.metadata.annotations) == {"regcred.dev/content-hash"}
    assert secret.metadata.annotations["regcred.dev/content-hash"] == body["status"]["contentHash"]
    [owner] = secret.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid) == ("RegistryCredential", name, body["metadata"]["uid"])
    assert pull_secret_names(cluster, namespace) == ["acme-pull"]


def test_rotation_updates_replicas_in_place(cluster, make_namespace, credentials, sources, wait_for):
    tenant = uuid.uuid4().hex[:8]
    namespaces = [make_namespace("rot", labels={"tenant": tenant}) for _ in range(3)]
    source = sources.create({"password": "first-password"})
    name = credentials.create(tenant_spec(tenant, source))
    credentials.wait_ready(name)
    before = {ns: replica(cluster, ns, name) for ns in namespaces}

    sources.replace_data(source, {"password": "second-password"})

    def rotated(ns: str) -> bool:
        secret = replica(cluster, ns, name)
        return secret is not None and b"second-password" in docker_config(secret)

    wait_for(lambda: all(rotated(ns) for ns in namespaces), what="rotation to reach every replica")
    for ns in namespaces:
        assert replica(cluster, ns, name).metadata.uid == before[ns].metadata.uid


def test_service_accounts_keep_other_entries_and_get_patched_when_created_later(
    cluster, make_namespace, credentials, sources, wait_for
):
    tenant = uuid.uuid4().hex[:8]
    namespace = make_namespace("sa", labels={"tenant": tenant})
    wait_for(lambda: has_default_sa(cluster, namespace), what="default ServiceAccount")
    cluster.core.create_namespaced_service_account(
        namespace,
        client.V1ServiceAccount(
            metadata=client.V1ObjectMeta(name="builder-1"),
            image_pull_secrets=[client.V1LocalObjectReference(name="zeta"),
                                client.V1LocalObjectReference(name="alpha")],
        ),
    )
    source = sources.create({"password": "pw"})
    name = credentials.create(tenant_spec(tenant, source, serviceAccounts=["default", "builder-*"]))
    credentials.wait_ready(name)

    wait_for(lambda: pull_secret_names(cluster, namespace, "builder-1") == ["zeta", "alpha", name],
             what="builder-1 patched with order kept")
    assert pull_secret_names(cluster, namespace) == [name]

    cluster.core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="builder-2"))
    )
    cluster.core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="runner"))
    )
    wait_for(lambda: pull_secret_names(cluster, namespace, "builder-2") == [name],
             what="a ServiceAccount created later to be patched")
    assert pull_secret_names(cluster, namespace, "runner") == []


def test_new_namespace_gets_replica_and_its_default_service_account_is_patched(
    cluster, make_namespace, credentials, sources, wait_for
):
    tenant = uuid.uuid4().hex[:8]
    source = sources.create({"password": "pw"})
    name = credentials.create(tenant_spec(tenant, source))
    credentials.wait_ready(name)

    namespace = make_namespace("late", labels={"tenant": tenant})
    wait_for(lambda: replica(cluster, namespace, name), what="replica in the new namespace")
    # The controller-manager creates `default` a moment after the namespace.
    wait_for(lambda: has_default_sa(cluster, namespace) and pull_secret_names(cluster, namespace) == [name],
             what="default ServiceAccount patched")


def test_pod_in_a_tenant_namespace_gets_the_pull_secret(
    cluster, make_namespace, credentials, sources, wait_for
):
    tenant = uuid.uuid4().hex[:8]
    namespace = make_namespace("pod", labels={"tenant": tenant})
    source = sources.create({"password": "pw"})
    name = credentials.create(tenant_spec(tenant, source))
    credentials.wait_ready(name)
    wait_for(lambda: has_default_sa(cluster, namespace) and pull_secret_names(cluster, namespace) == [name],
             what="default ServiceAccount patched")

    pod = cluster.core.create_namespaced_pod(
        namespace,
        client.V1Pod(
            metadata=client.V1ObjectMeta(name="app"),
            spec=client.V1PodSpec(containers=[client.V1Container(name="app", image=f"{SERVER}/app:1")]),
        ),
    )
    # The ServiceAccount admission plugin copied the entry into the Pod.
    assert [ref.name for ref in pod.spec.image_pull_secrets] == [name]
