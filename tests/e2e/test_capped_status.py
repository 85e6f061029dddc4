"""A credential that fails in more namespaces than status lists, each with a long message
from the API server, gets a status within its caps, written and saying how many more."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client
from objects import tenant_spec

from regcred.planning.caps import MAX_CONDITION_MESSAGE_CHARS, MAX_EVENT_MESSAGE_CHARS, MAX_MESSAGE_CHARS
from regcred.planning.conditions import MAX_LISTED_NAMESPACES

PAST_THE_CAP = 3
# An admission policy's message comes back in the API server's refusal, and from there
# into each namespace's failure: longer than a status message may be.
POLICY_MESSAGE = "pull secrets are refused here by the platform team's policy; " + "read the runbook " * 200


@pytest.fixture
def refuse_secrets(cluster, wait_for) -> Iterator[str]:
    """A ValidatingAdmissionPolicy that refuses every Secret in namespaces labelled with the
    returned tenant, with POLICY_MESSAGE."""
    admission = client.AdmissionregistrationV1Api(cluster.api_client)
    tenant = uuid.uuid4().hex[:8]
    name = f"regcred-e2e-refuse-secrets-{tenant}"
    admission.create_validating_admission_policy({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                "resources": ["secrets"],
            }]},
            "validations": [{"expression": "false", "message": POLICY_MESSAGE}],
        },
    })
    admission.create_validating_admission_policy_binding({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {"tenant": tenant}}},
        },
    })
    try:
        yield tenant
    finally:
        admission.delete_validating_admission_policy_binding(name)
        admission.delete_validating_admission_policy(name)


def refused(cluster, namespace: str) -> bool:
    """Whether the policy is in force in `namespace` (it takes effect a moment after it is made)."""
    probe = client.V1Secret(metadata=client.V1ObjectMeta(name="probe"), string_data={"a": "b"})
    try:
        cluster.core.create_namespaced_secret(namespace, probe, dry_run="All")
    except client.ApiException as error:
        return error.status in (400, 403, 422) and "runbook" in (error.body or "")
    return False


def test_a_credential_failing_in_many_namespaces_with_long_messages_keeps_a_capped_status(
    cluster, make_namespace, credentials, sources, refuse_secrets, wait_for
):
    namespaces = [
        make_namespace("cap", labels={"tenant": refuse_secrets})
        for _ in range(MAX_LISTED_NAMESPACES + PAST_THE_CAP)
    ]
    wait_for(lambda: refused(cluster, namespaces[0]), timeout=30, what="the admission policy in force")
    name = credentials.create(tenant_spec(refuse_secrets, sources.create({"password": "pw"})))
    total = len(namespaces)

    def all_failed() -> dict | None:
        ready = credentials.condition(name, "Ready")
        wanted = f"{total} of {total} namespaces failed to sync"
        return ready if ready and ready["message"].startswith(wanted) else None

    ready = wait_for(all_failed, timeout=90, what="every namespace's failure in status")
    status = credentials.status(name)
    assert status["observedGeneration"] == credentials.get(name)["metadata"]["generation"]
    assert (ready["status"], ready["reason"]) == ("False", "NamespacesFailed")
    note = f"failedNamespaces lists the first {MAX_LISTED_NAMESPACES}, and {PAST_THE_CAP} more"
    assert ready["message"].endswith(note)
    assert len(ready["message"]) <= MAX_CONDITION_MESSAGE_CHARS

    listed = status["failedNamespaces"]
    assert [issue["namespace"] for issue in listed] == sorted(namespaces)[:MAX_LISTED_NAMESPACES]
    for issue in listed:
        assert "runbook" in issue["message"], "the API server's refusal is what status shows"
        assert len(issue["message"]) <= MAX_MESSAGE_CHARS
        assert issue["message"].endswith(" more characters")
    uncapped = total * len(POLICY_MESSAGE)
    written = len(json.dumps(status))
    print(f"status: {written} bytes for {total} failures of {len(POLICY_MESSAGE)}-character messages "
          f"({uncapped} bytes of messages uncapped)")

    events = cluster.core.list_namespaced_event("default", field_selector=f"involvedObject.name={name}")
    assert events.items, "the Ready transition was announced"
    assert all(len(event.message or "") <= MAX_EVENT_MESSAGE_CHARS for event in events.items)
