"""deploy/ is a kustomize base that installs the operator: it renders, the API server takes it."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from manifests import (
    DEPLOY,
    OPERATOR_NAMESPACE,
    POD_PULL_SECRETS_COMPONENT,
    REPO,
    SERVICEMONITOR_COMPONENT,
    TENANT_BOUNDARY_COMPONENT,
    Manifest,
    component_overlay,
    identity,
    only,
    parse_documents,
    run_tool,
)

import regcred
from regcred.cli import build_parser
from regcred.planning.plan import CREDENTIAL_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE

IMAGE = "ghcr.io/regcred/regcred-operator"


def test_the_image_tag_is_the_package_version(kustomize):
    deployment = only(kustomize(DEPLOY), "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{IMAGE}:{regcred.__version__}"


def test_the_deployment_runs_two_leader_electing_replicas_with_probes(kustomize):
    deployment = only(kustomize(DEPLOY), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert deployment["spec"]["replicas"] == 2
    assert container["args"] == ["run", "--leader-elect", "--log-format", "json"]
    assert container["env"] == [
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "REGCRED_LOG_LEVEL", "value": "info"},
        # Tenants' registry checks are off until an overlay says otherwise (docs/install.md).
        {"name": "REGCRED_TENANT_VERIFY", "value": "false"},
        {"name": "REGCRED_TENANT_VERIFY_ALLOW", "value": ""},
    ]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"metrics": 8080, "health": 8081}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert pod["serviceAccountName"] == "regcred-operator"


def test_the_servicemonitor_component_scrapes_the_metrics_service(kustomize, tmp_path: Path):
    manifests = kustomize(component_overlay(tmp_path, SERVICEMONITOR_COMPONENT))
    monitor = only(manifests, "ServiceMonitor")
    service = only(manifests, "Service")
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert len(manifests) == len(kustomize(DEPLOY)) + 1


def test_the_pod_pull_secrets_component_adds_only_the_admission_policy(kustomize, tmp_path: Path):
    manifests = kustomize(component_overlay(tmp_path, POD_PULL_SECRETS_COMPONENT))
    policy = only(manifests, "MutatingAdmissionPolicy")
    binding = only(manifests, "MutatingAdmissionPolicyBinding")
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert policy["spec"]["paramKind"] == {"apiVersion": "v1", "kind": "Secret"}
    # The parameters are the operator's replicas, by the labels it puts on them.
    selector = binding["spec"]["paramRef"]["selector"]
    assert selector["matchLabels"] == {MANAGED_BY_LABEL: MANAGED_BY_VALUE}
    assert selector["matchExpressions"] == [{"key": CREDENTIAL_LABEL, "operator": "Exists"}]
    assert "namespace" not in binding["spec"]["paramRef"]  # the Pod's own namespace
    assert binding["spec"]["paramRef"]["parameterNotFoundAction"] == "Allow"
    assert policy["spec"]["failurePolicy"] == "Ignore"
    assert len(manifests) == len(kustomize(DEPLOY)) + 2


def test_the_write_policy_fences_the_installed_service_account(kustomize):
    manifests = kustomize(DEPLOY)
    policy = only(manifests, "ValidatingAdmissionPolicy")
    binding = only(manifests, "ValidatingAdmissionPolicyBinding")
    account = only(manifests, "ServiceAccount")["metadata"]
    assert binding["spec"] == {"policyName": policy["metadata"]["name"], "validationActions": ["Deny"]}
    assert policy["spec"]["failurePolicy"] == "Fail"
    (condition,) = policy["spec"]["matchConditions"]
    assert condition["expression"] == (
        f"request.userInfo.username == 'system:serviceaccount:{account['namespace']}:{account['name']}'"
    )
    rules = [(r["resources"], r["operations"]) for r in policy["spec"]["matchConstraints"]["resourceRules"]]
    assert rules == [(["secrets", "serviceaccounts"], ["CREATE", "UPDATE", "DELETE"]), (["pods"], ["DELETE"])]
    # The labels it requires are the ones the operator writes.
    expressions = yaml.safe_dump(policy["spec"]["variables"])
    for key in (MANAGED_BY_LABEL, MANAGED_BY_VALUE, CREDENTIAL_LABEL):
        assert f"'{key}'" in expressions


def test_the_tenant_boundary_guards_every_subresource_of_namespaces(kustomize, tmp_path: Path):
    manifests = kustomize(component_overlay(tmp_path, TENANT_BOUNDARY_COMPONENT))
    (policy,) = [
        m for m in manifests
        if m["kind"] == "ValidatingAdmissionPolicy" and m["metadata"]["name"] == "regcred-tenant-boundary"
    ]
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rule["resources"] == ["namespaces", "namespaces/*"]


@pytest.mark.e2e
def test_apply_installs_every_object(cluster, control_plane_bin: Path, kustomize):
    """`kubectl apply --server-side -k deploy/` for real; every object exists afterwards.

    The objects keep their real names. The CRD is left installed: the end-to-end tests of
    this test run use it, and they apply the identical file with the same field manager.
    """
    kubectl = [str(control_plane_bin / "kubectl"), "--kubeconfig", str(cluster.kubeconfig)]
    existing = subprocess.run(
        [*kubectl, "get", "namespace", OPERATOR_NAMESPACE], capture_output=True, check=False
    )
    if existing.returncode == 0:
        pytest.skip(
            f"namespace {OPERATOR_NAMESPACE} exists: this cluster may run the operator already"
        )
    manifests = kustomize(DEPLOY)
    removable = [
        manifest for manifest in manifests if manifest["kind"] != "CustomResourceDefinition"
    ]
    try:
        run_tool([*kubectl, "apply", "--server-side", "-k", str(DEPLOY)])
        found = parse_documents(run_tool([*kubectl, "get", "-k", str(DEPLOY), "-o", "yaml"]))
        assert sorted(identity(item) for item in _items(found)) == sorted(
            identity(m) for m in manifests
        )
        assert_pod_template_is_admitted(kubectl, only(manifests, "Deployment"))
    finally:
        _delete(kubectl, removable)


def assert_pod_template_is_admitted(kubectl: list[str], deployment: Manifest) -> None:
    """The namespace enforces the restricted Pod Security Standard; no kubelet runs Pods here,
    so a server-side dry run of the template's Pod stands in for the ReplicaSet controller."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "admission-check", "namespace": deployment["metadata"]["namespace"]},
        "spec": deployment["spec"]["template"]["spec"],
    }
    run_tool([*kubectl, "create", "--dry-run=server", "-f", "-"], stdin=yaml.safe_dump(pod))


def _items(found: list[Manifest]) -> list[Manifest]:
    """`kubectl get -o yaml` of several objects is one List."""
    return [item for document in found for item in document.get("items", [document])]


def _delete(kubectl: list[str], manifests: list[Manifest]) -> None:
    run_tool(
        [*kubectl, "delete", "--ignore-not-found", "--wait=false", "-f", "-"],
        stdin=yaml.safe_dump_all(manifests),
    )


def documented_overlay(tmp_path: Path, marker: str) -> Path:
    """The docs/install.md overlay containing `marker`, written as a kustomization folder."""
    text = (REPO / "docs" / "install.md").read_text()
    (overlay,) = [
        block for block in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL) if marker in block
    ]
    folder = tmp_path / "my-overlay"
    folder.mkdir()
    # The docs put the overlay beside deploy/; here deploy/ is elsewhere.
    (folder / "kustomization.yaml").write_text(
        overlay.replace("  - ../deploy\n", f"  - {os.path.relpath(DEPLOY, folder)}\n")
    )
    return folder


def test_the_documented_overlay_runs_your_image_with_the_pull_secret(kustomize, tmp_path: Path):
    """docs/install.md's overlay for an image in your own registry, rendered as written."""
    manifests = kustomize(
        documented_overlay(tmp_path, "newName: registry.example.com/team/regcred-operator")
    )
    (container,) = only(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"registry.example.com/team/regcred-operator:{regcred.__version__}"
    account = only(manifests, "ServiceAccount")
    assert account["imagePullSecrets"] == [{"name": "regcred-pull"}]


def test_the_documented_registry_ca_overlay_mounts_the_bundle_the_flag_names(kustomize, tmp_path: Path):
    """docs/install.md's private-CA overlay: the ConfigMap's key, read-only, at the flag's path."""
    manifests = kustomize(documented_overlay(tmp_path, "--registry-ca-file="))
    pod = only(manifests, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "registry-ca"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "registry-ca"]
    (item,) = volume["configMap"]["items"]

    assert mount["readOnly"] is True
    assert container["args"][-1] == f"--registry-ca-file={mount['mountPath']}/{item['path']}"
    assert build_parser().parse_args(container["args"]).command == "run"
