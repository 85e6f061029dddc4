"""Status, printer columns, Events, and no secret material in any of them or in the logs."""

from __future__ import annotations

import json
import logging
import uuid

from objects import replica, secret_forms, tenant_spec


def credential_events(cluster, name: str) -> list:
    events = cluster.core.list_namespaced_event("default", field_selector=f"involvedObject.name={name}")
    return [e for e in events.items if e.involved_object.kind == "RegistryCredential"]


def test_status_conditions_and_printer_columns(cluster, kubectl, make_namespace, credentials, sources):
    tenant = uuid.uuid4().hex[:8]
    for _ in range(2):
        make_namespace("st", labels={"tenant": tenant})
    source = sources.create({"password": "pw"})
    name = credentials.create(tenant_spec(tenant, source, secretName=f"pull-{tenant}"))
    status = credentials.wait_ready(name)

    assert status["observedGeneration"] == credentials.get(name)["metadata"]["generation"]
    assert (status["matchedNamespaces"], status["syncedNamespaces"], status["synced"]) == (2, 2, "2/2")
    assert status["secretName"] == f"pull-{tenant}"
    assert status["contentHash"].startswith("sha256:")
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == ("True", "Synced", 1)

    table = kubectl("get", "registrycredential", name).stdout.splitlines()
    assert table[0].split() == ["NAME", "SECRET", "SYNCED", "READY", "AGE"]
    assert table[1].split()[:4] == [name, f"pull-{tenant}", "2/2", "True"]


def test_transition_time_moves_only_on_a_flip_and_events_mark_transitions(
    cluster, make_namespace, credentials, sources, wait_for
):
    tenant = uuid.uuid4().hex[:8]
    make_namespace("tr", labels={"tenant": tenant})
    source = sources.create({"password": "pw"})
    name = credentials.create(tenant_spec(tenant, source))
    credentials.wait_ready(name)
    first = credentials.condition(name, "Ready")["lastTransitionTime"]

    # A change that keeps Ready=True must not move the transition time.
    make_namespace("tr", labels={"tenant": tenant})
    wait_for(lambda: credentials.status(name).get("synced") == "2/2", what="2/2")
    assert credentials.condition(name, "Ready")["lastTransitionTime"] == first

    sources.delete(source)
    wait_for(lambda: credentials.condition(name, "Ready")["status"] == "False", what="Ready=False")
    reasons = wait_for(
        lambda: {e.reason for e in credential_events(cluster, name)} >= {"Synced", "SourceInvalid"}
        and {e.reason for e in credential_events(cluster, name)},
        what="transition events",
    )
    # One event per transition, not one per namespace.
    assert len(credential_events(cluster, name)) <= 4, reasons


def test_no_secret_material_in_status_events_or_logs(
    cluster, make_namespace, credentials, sources, caplog, wait_for
):
    caplog.set_level(logging.DEBUG)
    canary_user = f"canary-user-{uuid.uuid4().hex[:8]}"
    canary_password = f"canary-pass-{uuid.uuid4().hex}"
    forms = secret_forms(canary_user, canary_password)
    tenant = uuid.uuid4().hex[:8]
    namespace = make_namespace("leak", labels={"tenant": tenant})
    source = sources.create({"password": canary_password})
    spec = tenant_spec(tenant, source)
    spec["registries"][0]["username"] = canary_user
    name = credentials.create(spec)
    credentials.wait_ready(name)
    assert replica(cluster, namespace, name) is not None
    # Break the source in ways that produce error messages, then delete the credential.
    sources.replace_data(source, {"password": canary_password + "\n", "other": canary_password})
    # The API server refuses invalid JSON in this type; a config without `auths` gets through.
    bad = sources.create({".dockerconfigjson": json.dumps({"credsStore": canary_password})},
                         type_="kubernetes.io/dockerconfigjson")
    credentials.patch_spec(name, {"dockerConfigSecretRefs": [{"name": bad}]})
    wait_for(lambda: (credentials.condition(name, "SourceValid") or {}).get("status") == "False",
             what="invalid source reported")
    status_text = json.dumps(credentials.get(name).get("status"))
    events_text = " ".join(f"{e.reason} {e.message}" for e in credential_events(cluster, name))
    credentials.delete(name)
    logs_text = "\n".join(record.getMessage() + str(record.exc_info or "") for record in caplog.records)

    for form in forms:
        assert form not in status_text
        assert form not in events_text
        assert form not in logs_text
