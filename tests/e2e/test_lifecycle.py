"""Triggers, narrowing, deletion, restore and idempotence, against the real API server."""

from __future__ import annotations

import logging
import time
import uuid

from kubernetes import client
from objects import docker_config, pull_secret_names, replica, tenant_spec


def setup_tenant(make_namespace, credentials, sources, count: int = 2, **spec_extra):
    tenant = uuid.uuid4().hex[:8]
    namespaces = [make_namespace("lc", labels={"tenant": tenant}) for _ in range(count)]
    source = sources.create({"password": f"pw-{uuid.uuid4().hex}"})
    name = credentials.create(tenant_spec(tenant, source, **spec_extra))
    credentials.wait_ready(name)
    return tenant, namespaces, source, name


def wait_patched(cluster, wait_for, namespace: str, name: str) -> None:
    wait_for(lambda: _sa_names(cluster, namespace) == [name], what=f"default SA in {namespace} patched")


def _sa_names(cluster, namespace: str) -> list[str] | None:
    try:
        return pull_secret_names(cluster, namespace)
    except client.ApiException:
        return None


def resource_versions(cluster, namespaces: list[str], name: str, credentials) -> dict[str, str]:
    versions = {"credential": credentials.get(name)["metadata"]["resourceVersion"]}
    for ns in namespaces:
        versions[f"{ns}/secret"] = replica(cluster, ns, name).metadata.resource_version
        sa = cluster.core.read_namespaced_service_account("default", ns)
        versions[f"{ns}/sa"] = sa.metadata.resource_version
    return versions


def test_relabelled_namespace_loses_replica_and_entry_but_keeps_hand_made_entries(
    cluster, make_namespace, credentials, sources, wait_for
):
    tenant, (kept, dropped), _, name = setup_tenant(make_namespace, credentials, sources)
    wait_patched(cluster, wait_for, dropped, name)
    # A person adds their own entry next to ours.
    cluster.core.patch_namespaced_service_account(
        "default", dropped, {"imagePullSecrets": [{"name": name}, {"name": "hand-made"}]}
    )

    cluster.core.patch_namespace(dropped, {"metadata": {"labels": {"tenant": None}}})

    wait_for(lambda: replica(cluster, dropped, name) is None, what="replica removed")
    wait_for(lambda: pull_secret_names(cluster, dropped) == ["hand-made"], what="only our entry removed")
    assert replica(cluster, kept, name) is not None
    wait_for(lambda: credentials.status(name).get("matchedNamespaces") == 1, what="status to count 1")


def test_hand_added_entry_with_our_name_survives_cleanup(
    cluster, make_namespace, credentials, sources, wait_for
):
    tenant = uuid.uuid4().hex[:8]
    namespace = make_namespace("hand", labels={"tenant": tenant})
    wait_for(lambda: _sa_names(cluster, namespace) is not None, what="default SA")
    source = sources.create({"password": "pw"})
    secret_name = f"pull-{tenant}"
    # The entry exists before the operator arrives: a person put it there.
    cluster.core.patch_namespaced_service_account(
        "default", namespace, {"imagePullSecrets": [{"name": secret_name}]}
    )
    name = credentials.create(tenant_spec(tenant, source, secretName=secret_name))
    credentials.wait_ready(name)
    credentials.delete(name)
    assert replica(cluster, namespace, secret_name) is None
    assert pull_secret_names(cluster, namespace) == [secret_name]


def test_selector_and_exclude_changes_narrow_and_widen(cluster, make_namespace, credentials, sources, wait_for):
    tenant, (first, second), _, name = setup_tenant(make_namespace, credentials, sources)
    credentials.patch_spec(name, {"excludeNamespaces": [first]})
    wait_for(lambda: replica(cluster, first, name) is None, what="excluded namespace cleaned")
    assert replica(cluster, second, name) is not None

    credentials.patch_spec(name, {"excludeNamespaces": []})
    wait_for(lambda: replica(cluster, first, name) is not None, what="namespace served again")
    credentials.wait_ready(name)


def test_edited_or_deleted_replica_and_removed_entry_are_restored(
    cluster, make_namespace, credentials, sources, wait_for
):
    tenant, (namespace,), _, name = setup_tenant(make_namespace, credentials, sources, count=1)
    wait_patched(cluster, wait_for, namespace, name)
    good = docker_config(replica(cluster, namespace, name))

    cluster.core.patch_namespaced_secret(name, namespace, {"data": {".dockerconfigjson": "e30="}})
    wait_for(lambda: docker_config(replica(cluster, namespace, name)) == good, what="edited replica restored")

    cluster.core.delete_namespaced_secret(name, namespace)
    wait_for(lambda: (s := replica(cluster, namespace, name)) is not None and docker_config(s) == good,
             what="deleted replica recreated")

    cluster.core.patch_namespaced_service_account("default", namespace, {"imagePullSecrets": None})
    wait_patched(cluster, wait_for, namespace, name)


def test_deleting_the_credential_removes_everything_it_added(
    cluster, make_namespace, credentials, sources, wait_for
):
    tenant, namespaces, _, name = setup_tenant(make_namespace, credentials, sources, count=3)
    for ns in namespaces:
        wait_patched(cluster, wait_for, ns, name)
    credentials.delete(name)
    for ns in namespaces:
        assert replica(cluster, ns, name) is None
        assert pull_secret_names(cluster, ns) == []
        annotations = cluster.core.read_namespaced_service_account("default", ns).metadata.annotations
        assert "regcred.dev/added-pull-secrets" not in (annotations or {})


def test_deletion_while_the_operator_is_down_completes_when_it_starts(
    cluster, make_namespace, credentials, sources, running_operator, wait_for
):
    tenant, namespaces, _, name = setup_tenant(make_namespace, credentials, sources)
    for ns in namespaces:
        wait_patched(cluster, wait_for, ns, name)
    running_operator.stop()
    credentials.delete(name, wait=False)
    time.sleep(1)
    assert credentials.exists(name), "the finalizer must hold the credential while the operator is down"
    running_operator.start()
    wait_for(lambda: not credentials.exists(name), timeout=60, what="deletion to finish")
    for ns in namespaces:
        assert replica(cluster, ns, name) is None
        assert pull_secret_names(cluster, ns) == []


def full_passes(operator) -> float:
    sample = operator.controller.metrics.registry.get_sample_value(
        "regcred_reconciles_total", {"kind": "full", "result": "success"}
    )
    return sample or 0.0


def test_converged_cluster_sees_zero_writes_and_no_info_logs_across_resyncs_and_a_restart(
    cluster, make_namespace, credentials, sources, running_operator, wait_for, caplog
):
    tenant, namespaces, _, name = setup_tenant(make_namespace, credentials, sources, count=3)
    for ns in namespaces:
        wait_patched(cluster, wait_for, ns, name)
    time.sleep(1)  # let the last status flush land
    before = resource_versions(cluster, namespaces, name, credentials)
    writes_before = running_operator.controller.stats.writes
    passes_before = full_passes(running_operator)
    caplog.clear()
    caplog.set_level(logging.INFO)

    # Longer than the resync period: at least one full pass happens, quietly.
    time.sleep(running_operator.config.resync_seconds + 5)
    assert full_passes(running_operator) > passes_before
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.INFO] == []
    assert resource_versions(cluster, namespaces, name, credentials) == before
    assert running_operator.controller.stats.writes == writes_before

    running_operator.stop()
    running_operator.start()
    time.sleep(running_operator.config.resync_seconds + 3)
    assert resource_versions(cluster, namespaces, name, credentials) == before
    assert running_operator.controller.stats.writes == 0
    assert running_operator.controller.stats.status_writes == 0


def test_deleted_namespace_is_dropped_from_status(cluster, make_namespace, credentials, sources, wait_for):
    tenant, (kept, gone), _, name = setup_tenant(make_namespace, credentials, sources)
    cluster.core.delete_namespace(gone)
    wait_for(lambda: credentials.status(name).get("synced") == "1/1", timeout=90, what="status 1/1")


def test_a_source_change_touches_only_the_credential_that_reads_it(
    cluster, make_namespace, credentials, sources, running_operator, wait_for
):
    rotated = setup_tenant(make_namespace, credentials, sources)
    bystander = setup_tenant(make_namespace, credentials, sources)
    for _, namespaces, _, name in (rotated, bystander):
        for ns in namespaces:
            wait_patched(cluster, wait_for, ns, name)
    time.sleep(1)  # let the last status flush land
    _, rotated_namespaces, rotated_source, rotated_name = rotated
    _, bystander_namespaces, _, bystander_name = bystander
    untouched = resource_versions(cluster, bystander_namespaces, bystander_name, credentials)
    writes_before = running_operator.controller.stats.writes
    old_hash = credentials.status(rotated_name)["contentHash"]

    sources.replace_data(rotated_source, {"password": f"pw-{uuid.uuid4().hex}"})
    wait_for(
        lambda: all(
            (secret := replica(cluster, ns, rotated_name)) is not None
            and secret.metadata.annotations["regcred.dev/content-hash"] != old_hash
            for ns in rotated_namespaces
        ),
        what="the rotated credential's replicas updated",
    )
    time.sleep(1)
    # One replica update per namespace of the credential that reads the Secret, nothing else.
    assert running_operator.controller.stats.writes - writes_before == len(rotated_namespaces)
    assert resource_versions(cluster, bystander_namespaces, bystander_name, credentials) == untouched


def test_records_in_the_old_name_only_format_are_taken_up_by_the_copys_owner(
    cluster, make_namespace, credentials, sources, wait_for
):
    """As an earlier version left them: `name` alone. The credential whose copy is there
    rewrites its own to `name=credential`; one with no copy there stays, as nobody's."""
    tenant, namespaces, _, name = setup_tenant(make_namespace, credentials, sources, count=1)
    namespace = namespaces[0]
    wait_patched(cluster, wait_for, namespace, name)
    annotation = "regcred.dev/added-pull-secrets"

    def records() -> set[str]:
        annotations = cluster.core.read_namespaced_service_account("default", namespace).metadata.annotations
        return set(((annotations or {}).get(annotation) or "").split(",")) - {""}

    cluster.core.patch_namespaced_service_account("default", namespace, {
        "metadata": {"annotations": {annotation: f"{name},left-by-an-old-version"}},
        "imagePullSecrets": [{"name": name}, {"name": "left-by-an-old-version"}],
    })
    wait_for(lambda: records() == {f"{name}={name}", "left-by-an-old-version"}, what="the record rewritten")

    credentials.delete(name)
    assert pull_secret_names(cluster, namespace) == ["left-by-an-old-version"]
    assert records() == {"left-by-an-old-version"}
