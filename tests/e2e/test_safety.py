"""Nothing lost: foreign Secrets, contested names, invalid sources, tenants' boundaries."""

from __future__ import annotations

import base64
import json
import time
import uuid

from kubernetes import client
from objects import SERVER, docker_config, has_default_sa, pull_secret_names, replica, tenant_spec

from regcred.cli import build_parser
from regcred.options import config_from_args


def test_foreign_secret_is_never_touched_and_reported_then_resync_takes_the_name_when_freed(
    cluster, make_namespace, credentials, sources, wait_for
):
    tenant = uuid.uuid4().hex[:8]
    taken, free = (make_namespace("fs", labels={"tenant": tenant}) for _ in range(2))
    secret_name = f"pull-{tenant}"
    foreign = cluster.core.create_namespaced_secret(
        taken,
        client.V1Secret(metadata=client.V1ObjectMeta(name=secret_name), string_data={"token": "mine"}),
    )
    source = sources.create({"password": "pw"})
    name = credentials.create(tenant_spec(tenant, source, secretName=secret_name))

    def conflict_reported():
        status = credentials.status(name)
        return [c["namespace"] for c in status.get("conflictedNamespaces", [])] == [taken] and status

    status = wait_for(conflict_reported, what="conflict in status")
    assert status["conflictedNamespaces"][0]["reason"] == "SecretExists"
    assert status["synced"] == "1/2"
    assert next(c for c in status["conditions"] if c["type"] == "Ready")["status"] == "False"
    assert replica(cluster, free, secret_name) is not None
    time.sleep(1)
    untouched = cluster.core.read_namespaced_secret(secret_name, taken)
    assert untouched.metadata.resource_version == foreign.metadata.resource_version
    assert secret_name not in (pull_secret_names(cluster, taken) if has_default_sa(cluster, taken) else [])

    # Unwatched Secrets are rechecked on resync: once the name is free the operator serves it.
    cluster.core.delete_namespaced_secret(secret_name, taken)
    wait_for(lambda: (s := replica(cluster, taken, secret_name)) is not None
             and s.metadata.labels.get("regcred.dev/credential") == name, timeout=30,
             what="replica after the foreign Secret went away")
    credentials.wait_ready(name)


def test_older_credential_keeps_a_contested_name_without_flapping(
    cluster, make_namespace, credentials, sources, running_operator, wait_for
):
    tenant = uuid.uuid4().hex[:8]
    namespace = make_namespace("race", labels={"tenant": tenant})
    secret_name = f"shared-{tenant}"
    first_source = sources.create({"password": "first"})
    second_source = sources.create({"password": "second"})
    older = credentials.create(tenant_spec(tenant, first_source, secretName=secret_name))
    credentials.wait_ready(older)
    time.sleep(1.1)  # creationTimestamp has one-second resolution
    younger = credentials.create(tenant_spec(tenant, second_source, secretName=secret_name))

    def younger_reports_conflict():
        issues = credentials.status(younger).get("conflictedNamespaces", [])
        return issues and issues[0]["reason"] == "ClaimedByOlderCredential"

    wait_for(younger_reports_conflict, what="the younger credential to report the conflict")
    secret = replica(cluster, namespace, secret_name)
    assert secret.metadata.labels["regcred.dev/credential"] == older
    assert b"first" in docker_config(secret)
    version = secret.metadata.resource_version
    writes = running_operator.controller.stats.writes
    time.sleep(running_operator.config.resync_seconds + 2)
    assert replica(cluster, namespace, secret_name).metadata.resource_version == version
    assert running_operator.controller.stats.writes == writes, "no write ping-pong"

    # When the older one goes, the younger takes the name over.
    credentials.delete(older)
    wait_for(lambda: (s := replica(cluster, namespace, secret_name)) is not None
             and s.metadata.labels["regcred.dev/credential"] == younger
             and b"second" in docker_config(s), what="takeover by the younger credential")
    credentials.wait_ready(younger)


def test_invalid_source_keeps_last_good_copies_and_reports_reasons(
    cluster, make_namespace, credentials, sources, wait_for
):
    tenant = uuid.uuid4().hex[:8]
    namespace = make_namespace("src", labels={"tenant": tenant})
    source = sources.create({"password": "good"})
    name = credentials.create(tenant_spec(tenant, source))
    credentials.wait_ready(name)
    good = replica(cluster, namespace, name)

    cases = [
        ({"password": ""}, "SourceEmptyPassword"),
        ({"other": "x"}, "SourceKeyNotFound"),
    ]
    for data, reason in cases:
        cluster.core.replace_namespaced_secret(
            source, sources.namespace,
            client.V1Secret(metadata=client.V1ObjectMeta(name=source),
                            data={k: base64.b64encode(v.encode()).decode() for k, v in data.items()}),
        )
        wait_for(lambda: (credentials.condition(name, "SourceValid") or {}).get("reason") == reason,
                 what=f"SourceValid reason {reason}")
        assert credentials.condition(name, "Ready")["status"] == "False"
        now = replica(cluster, namespace, name)
        assert now.metadata.resource_version == good.metadata.resource_version
        assert now.data == good.data

    sources.delete(source)
    wait_for(lambda: (credentials.condition(name, "SourceValid") or {}).get("reason") == "SourceSecretNotFound",
             what="missing source reported")
    assert replica(cluster, namespace, name).metadata.resource_version == good.metadata.resource_version


def test_docker_config_sources_merge_with_precedence_and_bad_types_are_reported(
    cluster, make_namespace, credentials, sources, wait_for
):
    tenant = uuid.uuid4().hex[:8]
    namespace = make_namespace("merge", labels={"tenant": tenant})
    legacy = {"auths": {SERVER: {"auth": base64.b64encode(b"old:old").decode()},
                        "ghcr.io": {"auth": base64.b64encode(b"gh:token").decode()}}}
    config_source = sources.create({".dockerconfigjson": json.dumps(legacy)},
                                   type_="kubernetes.io/dockerconfigjson")
    password_source = sources.create({"password": "new"})
    name = credentials.create({
        **tenant_spec(tenant, password_source),
        "dockerConfigSecretRefs": [{"name": config_source}],
    })
    status = credentials.wait_ready(name)
    auths = json.loads(docker_config(replica(cluster, namespace, name)))["auths"]
    assert set(auths) == {SERVER, "ghcr.io"}
    assert auths[SERVER]["password"] == "new", "registries win over dockerConfigSecretRefs"
    [override] = status["overriddenRegistries"]
    assert override["server"] == SERVER and override["used"] == "registries[0]"

    opaque = sources.create({".dockerconfigjson": json.dumps(legacy)})
    credentials.patch_spec(name, {"dockerConfigSecretRefs": [{"name": opaque}]})
    wait_for(lambda: (credentials.condition(name, "SourceValid") or {}).get("reason") == "SourceWrongType",
             what="wrong type reported")


def test_source_outside_the_allowed_namespaces_is_refused(
    cluster, make_namespace, credentials, sources, wait_for
):
    tenant = uuid.uuid4().hex[:8]
    namespace = make_namespace("tenant", labels={"tenant": tenant})
    # A tenant-controlled namespace is not a source namespace.
    elsewhere = sources.create({"password": "stolen?"}, namespace=namespace)
    spec = tenant_spec(tenant, elsewhere)
    spec["registries"][0]["passwordSecretRef"]["namespace"] = namespace
    name = credentials.create(spec)
    condition = wait_for(lambda: credentials.condition(name, "SourceValid"), what="SourceValid condition")
    assert condition["reason"] == "SourceNamespaceNotAllowed"
    assert replica(cluster, namespace, name) is None


def test_always_excluded_namespaces_are_skipped(credentials, sources, cluster, wait_for):
    source = sources.create({"password": "pw"})
    name = credentials.create({
        "registries": [{"server": SERVER, "username": "u", "passwordSecretRef": {"name": source}}],
        "namespaces": ["kube-*"],
    })
    status = credentials.wait_ready(name)
    assert status["matchedNamespaces"] == 0
    assert replica(cluster, "kube-system", name) is None


def test_an_excluded_namespace_flag_adds_to_the_always_excluded_ones(
    credentials, sources, cluster, make_namespace, operator_with
):
    """`--exclude-namespace` once replaced the built-in exclusions: naming one more made kube-system selectable."""
    skipped, served = make_namespace("skip"), make_namespace("serve")
    config = config_from_args(build_parser().parse_args(["run", "--exclude-namespace", skipped]))
    operator_with(excluded_namespaces=config.excluded_namespaces)
    source = sources.create({"password": "pw"})
    name = credentials.create({
        "registries": [{"server": SERVER, "username": "u", "passwordSecretRef": {"name": source}}],
        "namespaces": ["kube-*", skipped, served],
    })
    status = credentials.wait_ready(name)
    assert status["matchedNamespaces"] == 1
    assert replica(cluster, served, name) is not None
    assert replica(cluster, skipped, name) is None
    assert replica(cluster, "kube-system", name) is None
