"""The operator's ServiceAccount, with deploy/'s RBAC, can do what it needs and nothing dangerous.

Asked with SelfSubjectAccessReviews sent with the ServiceAccount's own token, so the
answers come from the same authentication and authorization the operator goes through.
"""

from __future__ import annotations

import pytest
from kubernetes import client

from e2e.conftest import opaque_secret

# (verb, resource, API group, namespace: None cluster-wide, "operator" the operator's own)
Access = tuple[str, str, str, str | None]

DENIED: list[Access] = [
    ("delete", "namespaces", "", None),
    ("create", "namespaces", "", None),
    ("create", "pods", "", "operator"),
    ("create", "pods/exec", "", "operator"),
    ("create", "deployments", "apps", "operator"),
    ("list", "nodes", "", None),
    ("get", "configmaps", "", "operator"),
    ("list", "configmaps", "", None),
    ("update", "secrets", "", None),
    ("create", "serviceaccounts/token", "", "operator"),
    ("create", "serviceaccounts", "", "operator"),
    ("create", "registrycredentials", "regcred.dev", None),
    ("delete", "registrycredentials", "regcred.dev", None),
    ("update", "registrycredentials", "regcred.dev", None),
    ("create", "customresourcedefinitions", "apiextensions.k8s.io", None),
    ("delete", "customresourcedefinitions", "apiextensions.k8s.io", None),
    ("create", "roles", "rbac.authorization.k8s.io", "operator"),
    ("patch", "roles", "rbac.authorization.k8s.io", "operator"),
    ("create", "rolebindings", "rbac.authorization.k8s.io", "operator"),
    ("create", "clusterroles", "rbac.authorization.k8s.io", None),
    ("patch", "clusterroles", "rbac.authorization.k8s.io", None),
    ("create", "clusterrolebindings", "rbac.authorization.k8s.io", None),
    ("escalate", "clusterroles", "rbac.authorization.k8s.io", None),
    ("bind", "clusterroles", "rbac.authorization.k8s.io", None),
    ("impersonate", "users", "", None),
    ("impersonate", "groups", "", None),
    ("impersonate", "serviceaccounts", "", "operator"),
    ("create", "leases", "coordination.k8s.io", "default"),
    ("patch", "pods", "", None),
    ("update", "pods", "", None),
    # Only the opt-in component restart-stuck-pods grants these.
    ("list", "pods", "", None),
    ("delete", "pods", "", None),
    ("get", "pods/log", "", None),
    ("list", "events", "", "default"),
]

pytestmark = pytest.mark.e2e


def aggregated(role: dict) -> bool:
    return any(key.startswith("rbac.authorization.k8s.io/aggregate-to-") for key in role["metadata"].get("labels", {}))


def granted_accesses(identity) -> list[Access]:
    """One access per verb of every rule the operator gets from deploy/ (named Lease rules
    aside; the roles aggregated into admin, edit and view are for people)."""
    accesses: list[Access] = []
    for role in (o for o in identity.objects if o["kind"] in {"ClusterRole", "Role"} and not aggregated(o)):
        namespace = role["metadata"].get("namespace")
        for rule in role["rules"]:
            if rule.get("resourceNames"):
                continue  # checked by name below
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    accesses += [(verb, resource, group, namespace) for verb in rule["verbs"]]
    return accesses


def test_the_operator_runs_as_the_service_account(operator_identity, running_operator):
    api = client.AuthenticationV1Api(operator_identity.api_client)
    assert api.create_self_subject_review(
        client.V1SelfSubjectReview()
    ).status.user_info.username == (operator_identity.username)
    assert running_operator.thread.memo["kubeconfig"] == str(operator_identity.kubeconfig)


def test_the_operators_writes_are_fenced_by_the_write_policy(operator_identity, running_operator):
    """deploy/'s write policy is in force for the session's operator, so every end-to-end
    test (fan-out, rotation, drift repair, cleanup) proves its writes pass the policy."""
    refusal = operator_identity.write_refused(opaque_secret(operator_identity.namespace))
    assert refusal and "regcred-operator-writes" in refusal


def test_every_rule_is_in_force(operator_identity):
    accesses = granted_accesses(operator_identity)
    assert accesses
    assert not [access for access in accesses if not _may(operator_identity, access)]


def test_the_lease_rule_reaches_only_its_own_lease(operator_identity):
    def may_update(name: str) -> bool:
        return operator_identity.may(
            "update", "leases", "coordination.k8s.io", operator_identity.namespace, name=name
        )

    assert may_update("regcred-operator")
    assert not may_update("someone-elses-lease")


@pytest.mark.parametrize("access", DENIED, ids=lambda a: f"{a[0]}-{a[1]}-{a[3] or 'cluster'}")
def test_dangerous_access_is_denied(operator_identity, access: Access):
    assert not _may(operator_identity, access)


def _may(identity, access: Access) -> bool:
    verb, resource, group, namespace = access
    return identity.may(
        verb, resource, group, identity.namespace if namespace == "operator" else namespace
    )
