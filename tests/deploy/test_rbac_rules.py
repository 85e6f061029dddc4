"""deploy/ grants exactly the rules docs/rbac.md gives a reason for, to the operator only;
the only other roles are aggregated into the built-in ones and grant TenantRegistryCredentials.
The opt-in component restart-stuck-pods adds exactly the rows of its own table there.

That the rules are enough is proven by the end-to-end suite, which runs the operator
as this ServiceAccount; this test keeps every grant tied to a documented use.
"""

from __future__ import annotations

from pathlib import Path

from manifests import DEPLOY, OPERATOR_NAMESPACE, REPO, RESTART_STUCK_PODS_COMPONENT, Manifest, component_overlay

RBAC_DOC = REPO / "docs" / "rbac.md"
TABLE_HEADER = "| Scope | API group | Resource | Names | Verbs | Why |"
BASE_SECTION = "## Rules"
RESTART_STUCK_PODS_SECTION = "## Opt-in: restarting stuck Pods"
ROLE_KINDS = {"ClusterRole", "Role"}
BINDING_KINDS = {"ClusterRoleBinding", "RoleBinding"}
OPERATOR_SUBJECT = {
    "kind": "ServiceAccount",
    "name": "regcred-operator",
    "namespace": OPERATOR_NAMESPACE,
}

# (scope, API group, resource, resource name or "", verb)
Permission = tuple[str, str, str, str, str]


def documented_permissions(section: str = BASE_SECTION) -> dict[Permission, str]:
    """Every permission in the table of a docs/rbac.md section, with its reason."""
    lines = RBAC_DOC.read_text().splitlines()
    start = lines.index(TABLE_HEADER, lines.index(section)) + 2  # skip the header and its |---| line
    permissions: dict[Permission, str] = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        scope, group, resource, names, verbs, why = (
            cell.strip() for cell in line.strip("|").split("|")
        )
        assert why, f"no reason given for {line}"
        for name in _split(names) or [""]:
            for verb in _split(verbs):
                permissions[(scope, group, resource, name, verb)] = why
    return permissions


AGGREGATE_LABEL_PREFIX = "rbac.authorization.k8s.io/aggregate-to-"


def _aggregated(role: Manifest) -> bool:
    """A role for people, merged into the built-in admin, edit or view ClusterRoles."""
    return any(key.startswith(AGGREGATE_LABEL_PREFIX) for key in role["metadata"].get("labels") or {})


def granted_permissions(manifests: list[Manifest], aggregated: bool = False) -> set[Permission]:
    """Every permission the operator's Roles and ClusterRoles of deploy/ grant (with
    `aggregated`, those of the roles for people instead), one per verb and name."""
    granted: set[Permission] = set()
    for role in (m for m in manifests if m["kind"] in ROLE_KINDS and _aggregated(m) == aggregated):
        scope = _scope(role)
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for name in rule.get("resourceNames") or [""]:
                        granted.update(
                            (scope, group, resource, name, verb) for verb in rule["verbs"]
                        )
    return granted


def test_every_rule_is_documented_and_every_documented_rule_exists(kustomize):
    granted = granted_permissions(kustomize(DEPLOY))
    documented = set(documented_permissions())
    assert not granted - documented, "granted in deploy/ without a row in docs/rbac.md"
    assert not documented - granted, "documented in docs/rbac.md but not granted in deploy/"


def test_the_restart_stuck_pods_component_adds_exactly_its_documented_rules(kustomize, tmp_path: Path):
    with_component = granted_permissions(kustomize(component_overlay(tmp_path, RESTART_STUCK_PODS_COMPONENT)))
    added = with_component - granted_permissions(kustomize(DEPLOY))
    assert added == set(documented_permissions(RESTART_STUCK_PODS_SECTION))
    assert {resource for _, _, resource, _, _ in added} == {"pods"}


def test_the_base_grants_no_pod_rights(kustomize):
    assert not [p for p in granted_permissions(kustomize(DEPLOY)) if p[2].partition("/")[0] == "pods"]


def test_no_rule_uses_wildcards(kustomize, tmp_path: Path):
    overlay = component_overlay(tmp_path, RESTART_STUCK_PODS_COMPONENT)
    for permission in granted_permissions(kustomize(overlay)):
        assert "*" not in permission, permission


def test_roles_for_people_reach_tenant_credentials_only(kustomize):
    granted = granted_permissions(kustomize(DEPLOY), aggregated=True)
    assert granted, "deploy/ aggregates TenantRegistryCredentials into the built-in roles"
    for scope, group, resource, _, _ in granted:
        assert (scope, group) == ("cluster", "regcred.dev"), resource
        assert resource.partition("/")[0] == "tenantregistrycredentials", resource


def test_every_role_is_bound_to_the_operator_and_nobody_else(kustomize, tmp_path: Path):
    manifests = kustomize(component_overlay(tmp_path, RESTART_STUCK_PODS_COMPONENT))
    roles = {
        (m["kind"], _scope(m), m["metadata"]["name"])
        for m in manifests
        if m["kind"] in ROLE_KINDS and not _aggregated(m)
    }
    bound = set()
    for binding in (m for m in manifests if m["kind"] in BINDING_KINDS):
        assert binding["subjects"] == [OPERATOR_SUBJECT], binding["metadata"]["name"]
        bound.add((binding["roleRef"]["kind"], _scope(binding), binding["roleRef"]["name"]))
    assert bound == roles


def _scope(manifest: Manifest) -> str:
    """The table's Scope column: cluster, operator namespace, or a namespace's name."""
    namespace = manifest["metadata"].get("namespace")
    if manifest["kind"].startswith("Cluster"):
        return "cluster"
    return "operator namespace" if namespace == OPERATOR_NAMESPACE else namespace


def _split(cell: str) -> list[str]:
    return [part.strip() for part in cell.split(",") if part.strip()]
