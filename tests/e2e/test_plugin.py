"""`kubectl regcred`: plan, status and create, against the real API server and the operator."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from objects import has_default_sa, kubectl_regcred, pull_secret_names, replica, tenant_spec
from tenancy import TENANT_LABEL, TenantWorld

from regcred.config import OperatorConfig
from regcred.models import API_GROUP, API_VERSION, KIND, TENANT_KIND, TENANT_PLURAL
from regcred.plugin import main as plugin_main

pytestmark = pytest.mark.usefixtures("crd_installed")

VENV_BIN = Path(sys.executable).parent


def manifest(name: str, spec: dict) -> dict:
    return {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": KIND, "metadata": {"name": name}, "spec": spec}


def plan(cluster, operator_namespace: str, tmp_path: Path, *documents: dict, output: str = "json"):
    path = tmp_path / f"plan-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    return kubectl_regcred(
        cluster, "plan", "-f", str(path), "-o", output, "--operator-namespace", operator_namespace
    )


def tenant_namespaces(make_namespace, cluster, wait_for, count: int, tenant: str | None = None):
    tenant = tenant or uuid.uuid4().hex[:8]
    namespaces = [make_namespace("plug", labels={"tenant": tenant}) for _ in range(count)]
    for ns in namespaces:
        wait_for(lambda ns=ns: has_default_sa(cluster, ns), what=f"default SA in {ns}")
    return tenant, namespaces


def test_plan_of_a_new_credential_lists_what_it_would_create_and_writes_nothing(
    cluster, operator_namespace, make_namespace, sources, wait_for, tmp_path
):
    tenant, namespaces = tenant_namespaces(make_namespace, cluster, wait_for, 2)
    source = sources.create({"password": "pw-plan"})
    name = f"plan-{uuid.uuid4().hex[:6]}"

    result = plan(cluster, operator_namespace, tmp_path, manifest(name, tenant_spec(tenant, source)))

    assert result.returncode == 1, result.stderr  # 1: it would change something
    [report] = json.loads(result.stdout)
    assert report["exists"] is False and report["sourceProblems"] == []
    rows = {row["namespace"]: row for row in report["namespaces"]}
    assert set(rows) == set(namespaces)
    for ns in namespaces:
        assert rows[ns]["replica"] == "create"
        assert rows[ns]["serviceAccounts"] == [f"default+{name}"]
        assert replica(cluster, ns, name) is None, "plan must not write"
    assert report["summary"]["gain"] == 2
    assert "read" in result.stderr  # progress goes to stderr, not into the JSON
    assert "pw-plan" not in result.stdout + result.stderr


def test_plan_of_an_applied_credential_shows_no_change_then_narrowing_and_conflicts(
    cluster, operator_namespace, make_namespace, credentials, sources, running_operator, wait_for, tmp_path
):
    tenant, namespaces = tenant_namespaces(make_namespace, cluster, wait_for, 3)
    source = sources.create({"password": "pw-applied"})
    spec = tenant_spec(tenant, source)
    name = credentials.create(spec)
    credentials.wait_ready(name)
    for ns in namespaces:
        wait_for(lambda ns=ns: pull_secret_names(cluster, ns) == [name], what=f"{ns} patched")

    unchanged = plan(cluster, operator_namespace, tmp_path, manifest(name, spec), output="table")
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr
    assert "0 namespaces gain the replica" in unchanged.stdout

    # Drop one namespace by name, and take the name in a newly matching one by hand
    # (the operator paused, or it would serve that namespace first).
    running_operator.stop()
    foreign_ns = make_namespace("plug", labels={"tenant": tenant, "extra": "yes"})
    cluster.core.create_namespaced_secret(
        foreign_ns, client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data={"a": "b"})
    )
    narrowed = {**spec, "excludeNamespaces": [namespaces[0]]}
    result = plan(cluster, operator_namespace, tmp_path, manifest(name, narrowed))
    assert result.returncode == 1
    [report] = json.loads(result.stdout)
    rows = {row["namespace"]: row for row in report["namespaces"]}
    assert rows[namespaces[0]]["replica"] == "delete"
    assert rows[namespaces[0]]["serviceAccounts"] == [f"default-{name}"]
    assert rows[foreign_ns]["outcome"] == "Conflict" and rows[foreign_ns]["reason"] == "SecretExists"
    assert rows[namespaces[1]]["replica"] is None and rows[namespaces[1]]["serviceAccounts"] == []
    assert report["exists"] is True


def test_plan_refuses_invalid_manifests_naming_the_field(cluster, operator_namespace, tmp_path):
    bad = manifest("bad", {"registries": [{"server": "not a server", "passwordSecretRef": {"name": "x"}}]})
    result = plan(cluster, operator_namespace, tmp_path, bad)
    assert result.returncode == 2
    assert "registries.0.server" in result.stderr

    empty = tmp_path / "empty.yaml"
    empty.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    result = kubectl_regcred(cluster, "plan", "-f", str(empty))
    assert result.returncode == 2 and "holds no RegistryCredential" in result.stderr


def test_status_shows_each_namespace_and_pods_that_cannot_pull(
    cluster, operator_namespace, make_namespace, credentials, sources, running_operator, wait_for
):
    tenant, namespaces = tenant_namespaces(make_namespace, cluster, wait_for, 2)
    source = sources.create({"password": "pw-status"})
    name = credentials.create(tenant_spec(tenant, source))
    credentials.wait_ready(name)
    for ns in namespaces:
        wait_for(lambda ns=ns: pull_secret_names(cluster, ns) == [name], what=f"{ns} patched")

    # With the operator away, a replica goes missing and a Pod there reports it.
    running_operator.stop()
    cluster.core.delete_namespaced_secret(name, namespaces[1])
    cluster.core.create_namespaced_event(namespaces[1], client.CoreV1Event(
        metadata=client.V1ObjectMeta(name=f"web.{uuid.uuid4().hex[:8]}"),
        involved_object=client.V1ObjectReference(kind="Pod", name="web", namespace=namespaces[1]),
        reason="FailedToRetrieveImagePullSecret",
        message=f'Unable to retrieve some image pull secrets ({name}); attempting to pull the image may not succeed.',
        type="Warning", last_timestamp="2026-11-29T00:00:00Z",
    ))

    result = kubectl_regcred(cluster, "status", name, "-o", "json", "--operator-namespace", operator_namespace)
    assert result.returncode == 0, result.stderr
    [report] = json.loads(result.stdout)
    rows = {row["namespace"]: row for row in report["namespaces"]}
    assert rows[namespaces[0]]["replica"] == "current"
    assert rows[namespaces[0]]["serviceAccounts"] == "patched"
    assert rows[namespaces[0]]["podsFailingToPull"] == []
    assert rows[namespaces[1]]["replica"] == "missing"
    assert rows[namespaces[1]]["podsFailingToPull"] == ["web: pull secret missing"]

    table = kubectl_regcred(cluster, "status", name, "--operator-namespace", operator_namespace)
    assert "PODS FAILING TO PULL" in table.stdout and "web: pull secret missing" in table.stdout


def test_create_prints_manifests_that_apply_and_sync(
    cluster, operator_namespace, make_namespace, credentials, wait_for, kubectl, tmp_path
):
    # A label value that kubectl's YAML reader takes for a number unless it is quoted.
    numeric_looking = f"{uuid.uuid4().int % 10**8}e5"
    tenant, namespaces = tenant_namespaces(make_namespace, cluster, wait_for, 1, tenant=numeric_looking)
    name = f"made-{uuid.uuid4().hex[:6]}"
    printed = kubectl_regcred(
        cluster, "create", name, "--server", "registry.example:5000", "--username", "robot",
        "--password-stdin", "--namespace-selector", f"tenant={tenant}",
        "--operator-namespace", operator_namespace, stdin="s3cret-create\n",
    )
    assert printed.returncode == 0, printed.stderr
    secret, credential = yaml.safe_load_all(printed.stdout)
    assert base64.b64decode(secret["data"]["password"]) == b"s3cret-create"
    # The source Secret goes where the operator reads sources by default: its own namespace.
    assert secret["metadata"]["namespace"] == operator_namespace
    assert credential["spec"]["registries"][0]["passwordSecretRef"] == {
        "name": secret["metadata"]["name"], "namespace": operator_namespace,
    }

    manifests = tmp_path / "made.yaml"
    manifests.write_text(printed.stdout)
    kubectl("apply", "-f", str(manifests))
    credentials.created.append(name)
    credentials.wait_ready(name)
    wait_for(lambda: pull_secret_names(cluster, namespaces[0]) == [name], what="patched")
    cluster.core.delete_namespaced_secret(secret["metadata"]["name"], operator_namespace)


def test_create_from_a_docker_config_and_apply(
    cluster, operator_namespace, make_namespace, credentials, wait_for, tmp_path
):
    tenant, namespaces = tenant_namespaces(make_namespace, cluster, wait_for, 1)
    auth = base64.b64encode(b"robot:from-docker").decode()
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {"registry.example:5000": {"auth": auth}}, "credsStore": "desktop"}))
    name = f"dock-{uuid.uuid4().hex[:6]}"
    result = kubectl_regcred(
        cluster, "create", name, "--from-docker-config", str(config), "--namespace-selector",
        f"tenant={tenant}", "--source-namespace", operator_namespace, "--apply",
    )
    assert result.returncode == 0, result.stderr
    credentials.created.append(name)
    credentials.wait_ready(name)
    copy = json.loads(base64.b64decode(replica(cluster, namespaces[0], name).data[".dockerconfigjson"]))
    assert copy == {"auths": {"registry.example:5000": {"auth": auth}}}
    cluster.core.delete_namespaced_secret(f"{name}-registry", operator_namespace)


def test_create_puts_the_source_where_the_operator_defaults_its_namespace(monkeypatch):
    """No flag: the operator's own default ($REGCRED_OPERATOR_NAMESPACE, $POD_NAMESPACE, else regcred-system)."""
    def printed_source_namespace() -> str:
        out = io.StringIO()
        monkeypatch.setattr("sys.stdin", io.StringIO("pw\n"))
        assert plugin_main(["create", "x", "--server", "r.example", "--username", "u", "--password-stdin",
                            "--namespaces", "team-*"], out) == 0
        secret, credential = yaml.safe_load_all(out.getvalue())
        assert credential["spec"]["registries"][0]["passwordSecretRef"]["namespace"] == secret["metadata"]["namespace"]
        return secret["metadata"]["namespace"]

    monkeypatch.delenv("REGCRED_OPERATOR_NAMESPACE", raising=False)
    monkeypatch.delenv("POD_NAMESPACE", raising=False)
    assert printed_source_namespace() == OperatorConfig().operator_namespace == "regcred-system"
    monkeypatch.setenv("POD_NAMESPACE", "from-pod")
    assert printed_source_namespace() == "from-pod"
    monkeypatch.setenv("REGCRED_OPERATOR_NAMESPACE", "from-setting")
    assert printed_source_namespace() == "from-setting"


def test_create_makes_a_tenant_credential_that_the_operator_serves(
    cluster, make_namespace, operator_with, wait_for
):
    """`create -n NS` by a tenant with `edit` there: the credential and its source Secret in NS."""
    operator_with(tenant_label=TENANT_LABEL)
    world = TenantWorld(cluster)
    try:
        tenant = f"t{uuid.uuid4().hex[:6]}"
        namespaces = [make_namespace("plug-tc", labels={TENANT_LABEL: tenant}) for _ in range(2)]
        other = make_namespace("plug-tc", labels={TENANT_LABEL: f"other-{tenant}"})
        home = namespaces[0]
        world.grant_edit(home)
        for ns in [*namespaces, other]:
            wait_for(lambda ns=ns: has_default_sa(cluster, ns), what=f"default SA in {ns}")
        name = f"tc-{uuid.uuid4().hex[:6]}"
        args = ["create", name, "-n", home, "--server", "registry.example:5000", "--username", "robot",
                "--password-stdin"]

        printed = kubectl_regcred(cluster, *args, stdin="tenant-pw\n")
        assert printed.returncode == 0, printed.stderr
        secret, credential = yaml.safe_load_all(printed.stdout)
        assert secret["metadata"] == {"name": f"{name}-registry", "namespace": home}
        assert credential["kind"] == TENANT_KIND and credential["metadata"] == {"name": name, "namespace": home}
        # No namespace in the reference: the tenant CRD refuses one at admission.
        assert credential["spec"]["registries"][0]["passwordSecretRef"] == {"name": f"{name}-registry"}

        # Applied with the tenant's own rights (edit in its namespace), picked up by the operator.
        applied = wait_for(lambda: (r := kubectl_regcred(cluster, *args, "--apply", "--as", world.tenant_user,
                                                         stdin="tenant-pw\n")).returncode == 0 and r,
                           what="the tenant's edit rights to take effect")
        assert f"tenantregistrycredential.{API_GROUP}/{name} applied in {home}" in applied.stdout
        for ns in namespaces:
            wait_for(lambda ns=ns: pull_secret_names(cluster, ns) == [name], timeout=60, what=f"{ns} patched")
        status = wait_for(lambda: (cluster.custom.get_namespaced_custom_object(
            API_GROUP, API_VERSION, home, TENANT_PLURAL, name).get("status") or {}).get("synced") == "2/2",
            timeout=60, what="the tenant credential synced 2/2")
        assert status
        assert replica(cluster, other, name) is None
        cluster.custom.delete_namespaced_custom_object(API_GROUP, API_VERSION, home, TENANT_PLURAL, name)
        wait_for(lambda: replica(cluster, namespaces[1], name) is None, timeout=60, what="cleanup")
    finally:
        world.close()


def test_create_explains_bad_flags_and_helper_only_docker_configs(cluster, tmp_path):
    helper_only = tmp_path / "config.json"
    helper_only.write_text(json.dumps({"auths": {"registry.example": {}}, "credsStore": "desktop"}))
    cases = [
        (["create", "x", "--namespace-selector", "t=a"], "--password-stdin"),
        (["create", "x", "--server", "r.example", "--username", "u", "--password-stdin"], "--namespace-selector"),
        (["create", "x", "--from-docker-config", str(helper_only), "--namespaces", "a"], "credential helper"),
        (["create", "x", "--from-docker-config", str(helper_only), "--server", "r", "--namespaces", "a"], "drop --server"),
        (["create", "x", "--server", "not a server", "--username", "u", "--password-stdin", "--namespaces", "a"],
         "spec.registries.0.server"),
        (["create", "x", "-n", "team-a", "--server", "r.example", "--username", "u", "--password-stdin",
          "--source-namespace", "regcred-system"], "drop --source-namespace"),
    ]
    for args, message in cases:
        result = kubectl_regcred(cluster, *args, stdin="pw\n")
        assert result.returncode == 2, (args, result.stdout)
        assert message in result.stderr, (args, result.stderr)


def test_kubectl_finds_the_plugin_on_path(cluster, control_plane_bin):
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [str(control_plane_bin / "kubectl"), "regcred", "--help"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "plan" in result.stdout and "status" in result.stdout and "create" in result.stdout
