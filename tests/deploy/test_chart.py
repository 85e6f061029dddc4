"""deploy/chart/ renders what deploy/ does, so the Helm and kustomize installs cannot drift."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml
from manifests import (
    CHART,
    CRD_FILES,
    DEPLOY,
    POD_PULL_SECRETS_COMPONENT,
    PREFIX_ONLY_BOUNDARY_COMPONENT,
    REPO,
    RESTART_STUCK_PODS_COMPONENT,
    SERVICEMONITOR_COMPONENT,
    TENANT_BOUNDARY_COMPONENT,
    Manifest,
    by_identity,
    component_overlay,
    only,
    run_tool,
)

import regcred
from regcred.cli import build_parser
from regcred.config import OperatorConfig, settings_from_env


def without_namespace_object(manifests: list[Manifest]) -> list[Manifest]:
    """Helm installs into a namespace it is given (`--create-namespace`) and never ships it."""
    return [manifest for manifest in manifests if manifest["kind"] != "Namespace"]


def refused_render(helm_bin: Path, *values: str) -> str:
    """`helm template` with these `--set` values must fail: its stderr."""
    command = [str(helm_bin), "template", "regcred-operator", str(CHART)]
    for value in values:
        command += ["--set", value]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    return result.stderr


def operator_args(manifests: list[Manifest]) -> list[str]:
    (container,) = only(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container["args"]


def test_lint_is_clean(helm_bin: Path):
    output = run_tool([str(helm_bin), "lint", "--strict", str(CHART)])
    assert "[WARNING]" not in output and "[ERROR]" not in output, output


def test_the_chart_crds_are_the_canonical_crds():
    for crd in CRD_FILES:
        chart_crd = CHART / "crds" / crd.name
        assert chart_crd.exists() and chart_crd.read_bytes() == crd.read_bytes(), (
            f"copy {crd.relative_to(REPO)} to {chart_crd.relative_to(REPO)} (Helm reads CRDs only there)"
        )
    assert sorted(path.name for path in (CHART / "crds").iterdir()) == [crd.name for crd in CRD_FILES]


def test_chart_and_app_version_are_the_package_version():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["version"] == chart["appVersion"] == regcred.__version__


def test_default_values_render_the_kustomize_objects(helm_template, kustomize):
    assert by_identity(helm_template()) == by_identity(without_namespace_object(kustomize(DEPLOY)))


def test_servicemonitor_value_renders_the_kustomize_component(
    helm_template, kustomize, tmp_path: Path
):
    with_monitor = helm_template("--set", "metrics.serviceMonitor.enabled=true")
    assert by_identity(with_monitor) == by_identity(
        without_namespace_object(kustomize(component_overlay(tmp_path, SERVICEMONITOR_COMPONENT)))
    )


def test_tenant_values_render_the_tenant_boundary_component(helm_template, kustomize, tmp_path: Path):
    with_boundary = helm_template(
        "--set", "tenantLabel=capsule.clastix.io/tenant", "--set", "tenantBoundary.enabled=true"
    )
    assert by_identity(with_boundary) == by_identity(
        without_namespace_object(kustomize(component_overlay(tmp_path, TENANT_BOUNDARY_COMPONENT)))
    )
    parsed = build_parser().parse_args(operator_args(with_boundary))
    assert parsed.tenant_label == "capsule.clastix.io/tenant"


def boundary_policy(manifests: list[Manifest]) -> Manifest:
    return only(
        [manifest for manifest in manifests if manifest["metadata"]["name"] == "regcred-tenant-boundary"],
        "ValidatingAdmissionPolicy",
    )


def test_capsule_values_render_the_prefix_only_component(helm_template, kustomize, tmp_path: Path):
    for_capsule = helm_template(
        "--set", "tenantLabel=capsule.clastix.io/tenant",
        "--set", "tenantBoundary.enabled=true",
        "--set", "tenantBoundary.guardTenantLabel=false",
    )
    overlay = component_overlay(tmp_path, TENANT_BOUNDARY_COMPONENT, PREFIX_ONLY_BOUNDARY_COMPONENT)
    assert by_identity(for_capsule) == by_identity(without_namespace_object(kustomize(overlay)))
    variables = {item["name"]: item["expression"] for item in boundary_policy(for_capsule)["spec"]["variables"]}
    assert (variables["tenantLabel"], variables["selectionPrefix"]) == ("''", "'regcred.dev/'")
    assert build_parser().parse_args(operator_args(for_capsule)).tenant_label == "capsule.clastix.io/tenant"


def test_the_boundary_guards_the_tenant_label_by_default(helm_template):
    manifests = helm_template("--set", "tenantLabel=example.com/tenant", "--set", "tenantBoundary.enabled=true")
    (tenant_label,) = [v for v in boundary_policy(manifests)["spec"]["variables"] if v["name"] == "tenantLabel"]
    assert tenant_label["expression"] == "'example.com/tenant'"


def test_a_prefix_only_boundary_needs_no_tenant_label(helm_template):
    manifests = helm_template("--set", "tenantBoundary.enabled=true", "--set", "tenantBoundary.guardTenantLabel=false")
    assert boundary_policy(manifests)
    assert build_parser().parse_args(operator_args(manifests)).tenant_label is None


def test_guarding_the_tenant_label_without_one_is_refused(helm_bin: Path):
    assert "guardTenantLabel needs tenantLabel" in refused_render(helm_bin, "tenantBoundary.enabled=true")


def test_admin_groups_and_users_values_exempt_exactly_those(helm_template):
    manifests = helm_template(
        "--set", "tenantLabel=capsule.clastix.io/tenant",
        "--set", "tenantBoundary.enabled=true",
        "--set", "tenantBoundary.adminGroups={system:masters,kubeadm:cluster-admins}",
        "--set", "tenantBoundary.adminUsers={system:serviceaccount:argocd:argocd-application-controller}",
    )
    (condition,) = boundary_policy(manifests)["spec"]["matchConditions"]
    assert condition["expression"] == (
        '!(request.userInfo.groups.exists(g, g in ["system:masters","kubeadm:cluster-admins"]) '
        '|| request.userInfo.username in ["system:serviceaccount:argocd:argocd-application-controller"])'
    )


def test_the_security_pages_admin_patch_renders_what_the_admin_values_do(
    helm_template, kustomize, tmp_path: Path
):
    page = (REPO / "docs" / "security.md").read_text()
    section = page[page.index("## Tenant boundary settings"):]
    patch = yaml.safe_load(re.findall(r"```yaml\n(.*?)```", section, re.S)[-1])
    overlay = component_overlay(tmp_path, TENANT_BOUNDARY_COMPONENT)
    kustomization = yaml.safe_load((overlay / "kustomization.yaml").read_text())
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({**kustomization, **patch}))
    with_values = helm_template(
        "--set", "tenantLabel=capsule.clastix.io/tenant",
        "--set", "tenantBoundary.enabled=true",
        "--set", "tenantBoundary.adminGroups={system:masters,kubeadm:cluster-admins}",
        "--set", "tenantBoundary.adminUsers={system:serviceaccount:argocd:argocd-application-controller}",
    )
    assert boundary_policy(kustomize(overlay)) == boundary_policy(with_values)


def test_pod_pull_secret_policy_value_renders_the_kustomize_component(
    helm_template, kustomize, tmp_path: Path
):
    with_policy = helm_template("--set", "podPullSecretPolicy.enabled=true")
    overlay = component_overlay(tmp_path, POD_PULL_SECRETS_COMPONENT)
    assert by_identity(with_policy) == by_identity(without_namespace_object(kustomize(overlay)))


def test_restart_stuck_pods_value_renders_the_kustomize_component(helm_template, kustomize, tmp_path: Path):
    with_pod_rights = helm_template("--set", "restartStuckPods.enabled=true")
    overlay = component_overlay(tmp_path, RESTART_STUCK_PODS_COMPONENT)
    assert by_identity(with_pod_rights) == by_identity(without_namespace_object(kustomize(overlay)))


def test_the_write_policy_fences_the_service_account_of_the_release_namespace(helm_template):
    manifests = helm_template("--namespace", "platform-ops")
    (condition,) = only(manifests, "ValidatingAdmissionPolicy")["spec"]["matchConditions"]
    subjects = only(manifests, "ClusterRoleBinding")["subjects"]
    assert subjects == [{"kind": "ServiceAccount", "name": "regcred-operator", "namespace": "platform-ops"}]
    assert condition["expression"] == (
        "request.userInfo.username == 'system:serviceaccount:platform-ops:regcred-operator'"
    )


def test_disabling_the_write_policy_drops_it(helm_template):
    manifests = helm_template("--set", "operatorWritesPolicy.enabled=false")
    kinds = {manifest["kind"] for manifest in manifests}
    assert not kinds & {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}


def test_namespace_values_become_operator_flags(helm_template):
    manifests = helm_template(
        "--set",
        "sourceNamespaces={team-secrets,shared}",
        "--set",
        "excludedNamespaces={kube-system,sandbox}",
    )
    args = operator_args(manifests)
    parsed = build_parser().parse_args(args)  # the flags the real command line accepts
    assert parsed.source_namespaces == ["team-secrets", "shared"]
    assert parsed.excluded_namespaces == ["kube-system", "sandbox"]
    assert parsed.leader_elect


def test_a_single_replica_without_leader_election_needs_no_lease_nor_budget(helm_template):
    manifests = helm_template("--set", "replicaCount=1", "--set", "leaderElection.enabled=false")
    assert "--leader-elect" not in operator_args(manifests)
    names = {manifest["metadata"]["name"] for manifest in manifests}
    assert "regcred-operator-leader-election" not in names
    assert not [manifest for manifest in manifests if manifest["kind"] == "PodDisruptionBudget"]


def test_replicas_without_leader_election_are_refused(helm_bin: Path):
    assert "needs leaderElection.enabled" in refused_render(helm_bin, "leaderElection.enabled=false")


def test_an_unknown_log_level_is_refused_at_render(helm_bin: Path):
    stderr = refused_render(helm_bin, "logLevel=verbose")
    # values.schema.json names the values it takes.
    assert "/logLevel" in stderr and "'debug', 'info', 'warning', 'error'" in stderr


def test_disabling_the_metrics_service_drops_it(helm_template):
    manifests = helm_template("--set", "metrics.service.enabled=false")
    assert not [manifest for manifest in manifests if manifest["kind"] == "Service"]


def test_image_values_name_the_image_and_its_pull_secrets(helm_template):
    manifests = helm_template(
        "--set", "image.repository=registry.example:5000/team/regcred-operator",
        "--set", "image.tag=9.9.9",
        "--set", "imagePullSecrets[0].name=team-pull",
    )
    pod = only(manifests, "Deployment")["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "registry.example:5000/team/regcred-operator:9.9.9"
    assert pod["imagePullSecrets"] == [{"name": "team-pull"}]


def test_tenant_verify_values_become_the_operators_variables(helm_template):
    manifests = helm_template("--set", "tenantVerify.enabled=true", "--set", "tenantVerify.allow={harbor.internal,10.20.0.0/16}")
    (container,) = only(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    environ = {item["name"]: item["value"] for item in container["env"] if "value" in item}
    config = OperatorConfig(**settings_from_env(environ))
    assert config.tenant_verify is True
    assert config.tenant_verify_allow == ("10.20.0.0/16", "harbor.internal")
