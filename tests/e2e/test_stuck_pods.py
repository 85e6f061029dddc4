"""spec.restartStuckPods: Pods admitted before their ServiceAccount listed the secret.

The local control plane has no kubelet and no ReplicaSet controller, so Pods stay
Pending: a test makes a Pod stuck by writing what the kubelet would through the
pods/status subresource (a container waiting in ImagePullBackOff), and plays the
ReplicaSet controller by creating the replacement Pod itself. The ServiceAccount
admission plugin is real: it decides which imagePullSecrets every Pod gets.

The operator's Pod rights come from an opt-in component (`stuck_pod_rights`); without
them a credential asking for restarts says so in its status and an Event, and nothing
is retried for it.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass

import pytest
from kubernetes import client
from objects import has_default_sa, kubectl_regcred, pull_secret_names, secret_forms, tenant_spec

IMAGE = "registry.acme.example:5000/team/web:1.0"


@pytest.fixture(autouse=True)
def _local_only(cluster) -> None:
    if not cluster.is_local:
        pytest.skip("writes Pod status by hand: a real kubelet and ReplicaSet controller would overwrite it")


@dataclass(frozen=True)
class Stuck:
    namespace: str
    replica_set: client.V1ReplicaSet
    owned: str  # a Pod the ReplicaSet controls
    bare: str  # a Pod nobody controls
    templated: str  # a Pod of the ReplicaSet whose template sets its own imagePullSecrets


def apps(cluster) -> client.AppsV1Api:
    return client.AppsV1Api(cluster.api_client)


def make_pod(cluster, namespace: str, name: str, owner: client.V1ReplicaSet | None = None,
             pull_secrets: tuple[str, ...] = ()) -> client.V1Pod:
    """A Pod admitted now (the ServiceAccount admission plugin fills imagePullSecrets), then stuck."""
    references = None
    if owner is not None:
        references = [client.V1OwnerReference(
            api_version="apps/v1", kind="ReplicaSet", name=owner.metadata.name, uid=owner.metadata.uid,
            controller=True, block_owner_deletion=True,
        )]
    pod = cluster.core.create_namespaced_pod(namespace, client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={"app": "web"}, owner_references=references),
        spec=client.V1PodSpec(
            containers=[client.V1Container(name="web", image=IMAGE)],
            image_pull_secrets=[client.V1LocalObjectReference(name=n) for n in pull_secrets] or None,
        ),
    ))
    # What the kubelet reports after a pull failed for want of credentials.
    waiting = {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{IMAGE}"'}
    cluster.core.patch_namespaced_pod_status(name, namespace, {"status": {"containerStatuses": [{
        "name": "web", "image": IMAGE, "imageID": "", "ready": False, "restartCount": 0,
        "state": {"waiting": waiting},
    }]}})
    return pod


def stuck_pods_before_the_credential(cluster, make_namespace, wait_for, tenant: str) -> Stuck:
    """A namespace whose default ServiceAccount has no pull secret yet, and three stuck Pods."""
    namespace = make_namespace("stuck", labels={"tenant": tenant})
    wait_for(lambda: has_default_sa(cluster, namespace), what=f"default SA in {namespace}")
    replica_set = apps(cluster).create_namespaced_replica_set(namespace, client.V1ReplicaSet(
        metadata=client.V1ObjectMeta(name="web-5d9c"),
        spec=client.V1ReplicaSetSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels={"app": "web"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "web"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="web", image=IMAGE)]),
            ),
        ),
    ))
    owned = make_pod(cluster, namespace, "web-5d9c-abcde", replica_set)
    assert not owned.spec.image_pull_secrets, "admitted before the ServiceAccount listed anything"
    make_pod(cluster, namespace, "debug")
    make_pod(cluster, namespace, "web-5d9c-tmpl", replica_set, pull_secrets=("team-own",))
    return Stuck(namespace, replica_set, "web-5d9c-abcde", "debug", "web-5d9c-tmpl")


def pod_uid(cluster, namespace: str, name: str) -> str | None:
    try:
        return cluster.core.read_namespaced_pod(name, namespace).metadata.uid
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise


def restart_events(cluster, namespace: str) -> list[client.CoreV1Event]:
    events = cluster.core.list_namespaced_event(namespace, field_selector="reason=RestartedStuckPod")
    return events.items


def restarted_metric(operator, credential: str) -> float | None:
    return operator.controller.metrics.registry.get_sample_value(
        "regcred_restarted_pods_total", {"credential": credential}
    )


def wait_for_resyncs(operator, count: int = 2) -> None:
    """Let `count` periodic full passes happen: whatever they would do, they have done."""
    time.sleep(operator.config.resync_seconds * count + 1)


def test_option_on_restarts_an_owned_stuck_pod_once_and_reports_the_others(
    cluster, make_namespace, credentials, sources, running_operator, wait_for, stuck_pod_rights
):
    tenant = uuid.uuid4().hex[:8]
    stuck = stuck_pods_before_the_credential(cluster, make_namespace, wait_for, tenant)
    owned_uid = pod_uid(cluster, stuck.namespace, stuck.owned)
    source = sources.create({"password": "pw-stuck"})

    name = credentials.create(tenant_spec(tenant, source, restartStuckPods=True))

    wait_for(lambda: pod_uid(cluster, stuck.namespace, stuck.owned) is None, what="the stuck Pod deleted")
    assert pull_secret_names(cluster, stuck.namespace) == [name]
    status = wait_for(
        lambda: (s := credentials.status(name)).get("restartedPods") == 1 and s.get("stuckPods") and s,
        what="the restart counted and the others reported",
    )
    assert status["stuckPods"] == [f"{stuck.namespace}/{stuck.bare}", f"{stuck.namespace}/{stuck.templated}"]
    assert pod_uid(cluster, stuck.namespace, stuck.bare) is not None, "a bare Pod is only reported"
    assert pod_uid(cluster, stuck.namespace, stuck.templated) is not None, "its new Pod would lack it too"
    [event] = wait_for(lambda: restart_events(cluster, stuck.namespace), what="the RestartedStuckPod Event")
    regarding = event.involved_object
    assert (regarding.kind, regarding.name, regarding.uid) == (
        "ReplicaSet", stuck.replica_set.metadata.name, stuck.replica_set.metadata.uid
    )
    assert stuck.owned in event.message and name in event.message and event.type == "Normal"
    assert restarted_metric(running_operator, name) == 1

    # The ReplicaSet's replacement, under the same name: admission gives it the secret now.
    # Stuck or not (the registry may be down), it is not touched, nor is anything else twice.
    replacement = make_pod(cluster, stuck.namespace, stuck.owned, stuck.replica_set)
    assert [ref.name for ref in replacement.spec.image_pull_secrets] == [name]
    assert replacement.metadata.uid != owned_uid
    wait_for_resyncs(running_operator)
    assert pod_uid(cluster, stuck.namespace, stuck.owned) == replacement.metadata.uid
    assert len(restart_events(cluster, stuck.namespace)) == 1
    assert credentials.status(name)["restartedPods"] == 1
    assert restarted_metric(running_operator, name) == 1


def test_option_off_deletes_nothing_and_kubectl_regcred_status_reports_the_stuck_pods(
    cluster, make_namespace, credentials, sources, running_operator, operator_namespace, wait_for,
    stuck_pod_rights,
):
    tenant = uuid.uuid4().hex[:8]
    stuck = stuck_pods_before_the_credential(cluster, make_namespace, wait_for, tenant)
    source = sources.create({"password": "pw-stuck-off"})
    name = credentials.create(tenant_spec(tenant, source))
    credentials.wait_ready(name)
    wait_for(lambda: pull_secret_names(cluster, stuck.namespace) == [name], what="default SA patched")
    wait_for_resyncs(running_operator)

    for pod in (stuck.owned, stuck.bare, stuck.templated):
        assert pod_uid(cluster, stuck.namespace, pod) is not None, f"{pod} deleted with the option off"
    assert restart_events(cluster, stuck.namespace) == []
    status = credentials.status(name)
    assert status.get("restartedPods", 0) == 0 and not status.get("stuckPods")
    assert restarted_metric(running_operator, name) is None

    result = kubectl_regcred(cluster, "status", name, "-o", "json", "--operator-namespace", operator_namespace)
    assert result.returncode == 0, result.stderr
    [report] = json.loads(result.stdout)
    [row] = [row for row in report["namespaces"] if row["namespace"] == stuck.namespace]
    failing = dict(entry.split(": ", 1) for entry in row["podsFailingToPull"])
    assert set(failing) == {stuck.owned, stuck.bare, stuck.templated}
    assert failing[stuck.owned].endswith("delete it, or set spec.restartStuckPods")
    assert "no controller" in failing[stuck.bare]
    table = kubectl_regcred(cluster, "status", name, "--operator-namespace", operator_namespace)
    assert f"{stuck.owned}: stuck without {name}" in table.stdout

    # Turning it on later heals the owned Pod.
    credentials.patch_spec(name, {"restartStuckPods": True})
    wait_for(lambda: pod_uid(cluster, stuck.namespace, stuck.owned) is None, what="restart once turned on")


def test_no_secret_material_in_restart_events_status_or_logs(
    cluster, make_namespace, credentials, sources, running_operator, caplog, wait_for, stuck_pod_rights
):
    caplog.set_level(logging.DEBUG)
    user, password = f"canary-user-{uuid.uuid4().hex[:8]}", f"canary-pass-{uuid.uuid4().hex}"
    tenant = uuid.uuid4().hex[:8]
    stuck = stuck_pods_before_the_credential(cluster, make_namespace, wait_for, tenant)
    source = sources.create({"password": password})
    spec = tenant_spec(tenant, source, restartStuckPods=True)
    spec["registries"][0]["username"] = user
    name = credentials.create(spec)
    wait_for(lambda: restart_events(cluster, stuck.namespace), what="the RestartedStuckPod Event")
    wait_for(lambda: credentials.status(name).get("stuckPods"), what="stuck Pods reported")

    outputs = {
        "events": json.dumps([e.to_dict() for e in cluster.core.list_namespaced_event(stuck.namespace).items],
                             default=str),
        "status": json.dumps(credentials.status(name)),
        "logs": "\n".join(record.getMessage() + str(record.exc_info or "") for record in caplog.records),
    }
    assert any("restarted stuck pod" in record.getMessage() for record in caplog.records), "nothing logged"
    leaks = [(where, form) for where, text in outputs.items() for form in secret_forms(user, password)
             if form in text]
    assert not leaks, f"secret material found: {leaks}"


def credential_events(cluster, name: str, reason: str) -> list[client.CoreV1Event]:
    """Events about a RegistryCredential (cluster-scoped: they are posted in `default`)."""
    selector = f"involvedObject.name={name},reason={reason}"
    return cluster.core.list_namespaced_event("default", field_selector=selector).items


def test_without_pod_rights_the_credential_reports_it_deletes_nothing_and_retries_nothing(
    cluster, make_namespace, credentials, sources, running_operator, operator_identity, caplog, wait_for,
    request,
):
    caplog.set_level(logging.WARNING, logger="regcred.controller.worker")
    wait_for(lambda: not operator_identity.may("list", "pods"), what="an operator without Pod rights")
    tenant = uuid.uuid4().hex[:8]
    stuck = stuck_pods_before_the_credential(cluster, make_namespace, wait_for, tenant)
    name = credentials.create(tenant_spec(tenant, sources.create({"password": "pw-no-rights"}),
                                          restartStuckPods=True))

    refused = wait_for(
        lambda: (c := credentials.condition(name, "StuckPodRestarts")) and c["status"] == "False" and c,
        what="StuckPodRestarts False",
    )
    assert refused["reason"] == "PodAccessForbidden"
    assert stuck.namespace in refused["message"] and "deploy/components/restart-stuck-pods" in refused["message"]
    assert credentials.wait_ready(name)["syncedNamespaces"] == 1, "replication goes on without Pod rights"
    [event] = wait_for(lambda: credential_events(cluster, name, "PodAccessForbidden"), what="a Warning Event")
    assert event.type == "Warning"

    passes = running_operator.controller.stats.snapshot()["namespace_passes"]
    wait_for_resyncs(running_operator)
    assert running_operator.controller.stats.snapshot()["namespace_passes"] > passes, "passes go on"
    retried = [r.getMessage() for r in caplog.records if name in r.getMessage()]
    assert not retried, f"work retried for want of Pod rights: {retried}"
    assert len(credential_events(cluster, name, "PodAccessForbidden")) == 1, "one Event, on the transition"
    assert pod_uid(cluster, stuck.namespace, stuck.owned) is not None

    # Granted later (the component applied), the next pass restarts the Pod and the condition turns.
    request.getfixturevalue("stuck_pod_rights")
    wait_for(lambda: pod_uid(cluster, stuck.namespace, stuck.owned) is None, timeout=60,
             what="the stuck Pod restarted once the rights are granted")
    wait_for(lambda: (c := credentials.condition(name, "StuckPodRestarts")) and c["status"] == "True",
             what="StuckPodRestarts True")
