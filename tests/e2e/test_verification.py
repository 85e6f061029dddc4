"""spec.verify and `kubectl regcred verify` against a real registry (TLS, htpasswd), and a real client
reading a private image with the replica the operator made."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid

import pytest
from fakeregistry import Tarpit
from objects import pull_secret_names, replica

from regcred_dev.controlplane.runner import free_port

pytestmark = pytest.mark.usefixtures("crd_installed")

VERIFY = {"enabled": True, "intervalMinutes": 5}


@pytest.fixture
def verifying_operator(operator_with, registry):
    """The session operator, restarted to trust the test registry's CA; restored afterwards."""
    return operator_with(registry_ca_file=str(registry.ca_file))


def registry_entry(server: str, username: str, source: str) -> dict:
    return {"server": server, "username": username, "passwordSecretRef": {"name": source}}


def condition(body: dict, kind: str) -> dict | None:
    return next((c for c in (body.get("status") or {}).get("conditions", []) if c["type"] == kind), None)


def wait_checked(credentials, name: str, wait_for, timeout: float = 60) -> dict:
    def checked():
        body = credentials.get(name)
        found = condition(body, "CredentialsValid")
        return body if found and found["reason"] != "Pending" else None

    return wait_for(checked, timeout=timeout, what=f"{name} checked")


def verified_login(registry, make_namespace, credentials, sources, wait_for) -> tuple[str, str, dict]:
    """A verifying credential for `registry`'s user, selecting a new namespace, checked Valid.

    Returns the namespace, the credential's name and its registry check.
    """
    tenant = uuid.uuid4().hex[:8]
    namespace = make_namespace("verify", labels={"tenant": tenant})
    source = sources.create({"password": registry.password})
    name = credentials.create({
        "registries": [registry_entry(registry.address, registry.username, source)],
        "namespaceSelector": {"matchLabels": {"tenant": tenant}},
        "verify": VERIFY,
    })
    body = wait_checked(credentials, name, wait_for)
    verdict = condition(body, "CredentialsValid")
    assert (verdict["status"], verdict["reason"]) == ("True", "Verified")
    [check] = body["status"]["registryChecks"]
    assert (check["server"], check["result"]) == (registry.address, "Valid")
    assert registry.password not in json.dumps(body)
    return namespace, name, check


def test_valid_login_verifies_and_a_real_client_reads_a_private_image_with_the_replica(
    cluster, registry, verifying_operator, make_namespace, credentials, sources, wait_for, tmp_path
):
    reference = registry.push_image(f"team/app-{uuid.uuid4().hex[:6]}", "v1")
    namespace, name, _ = verified_login(registry, make_namespace, credentials, sources, wait_for)

    wait_for(lambda: pull_secret_names(cluster, namespace) == [name], what="patched")
    config_dir = tmp_path / "docker"
    config_dir.mkdir()
    copy = replica(cluster, namespace, name)
    (config_dir / "config.json").write_bytes(base64.b64decode(copy.data[".dockerconfigjson"]))
    read = registry.crane(["manifest", reference], config_dir)
    assert read.returncode == 0, read.stderr
    assert json.loads(read.stdout)["schemaVersion"] == 2


def test_rejected_and_unreachable_registries_are_reported_distinctly_without_blocking_replication(
    cluster, registry, verifying_operator, make_namespace, credentials, sources, wait_for
):
    tenant = uuid.uuid4().hex[:8]
    namespace = make_namespace("verify", labels={"tenant": tenant})
    wrong = sources.create({"password": f"wrong-{uuid.uuid4().hex}"})
    good = sources.create({"password": registry.password})
    unreachable = f"127.0.0.1:{free_port()}"
    name = credentials.create({
        "registries": [
            registry_entry(registry.address, registry.username, wrong),
            registry_entry(unreachable, "robot", good),
        ],
        "namespaceSelector": {"matchLabels": {"tenant": tenant}},
        "verify": VERIFY,
    })
    body = wait_checked(credentials, name, wait_for)
    results = {check["server"]: check["result"] for check in body["status"]["registryChecks"]}
    assert results == {registry.address: "Rejected", unreachable: "Unreachable"}
    verdict = condition(body, "CredentialsValid")
    assert (verdict["status"], verdict["reason"]) == ("False", "CredentialsRejected")
    # Replication goes on regardless: the copy is there and Ready says so.
    credentials.wait_ready(name)
    assert replica(cluster, namespace, name) is not None

    # Fix the password: the changed content is checked at once, not at the next interval.
    credentials.patch_spec(name, {"registries": [registry_entry(registry.address, registry.username, good)]})
    wait_for(
        lambda: (condition(credentials.get(name), "CredentialsValid") or {}).get("reason") == "Verified",
        timeout=60, what="Verified after the fix",
    )


def test_a_hanging_registry_does_not_hold_up_replication(
    cluster, operator_with, make_namespace, credentials, sources, wait_for
):
    # One reconcile worker: a check on it would stall every other credential.
    operator_with(concurrency=1)
    tarpit = Tarpit()
    try:
        source = sources.create({"password": f"pw-{uuid.uuid4().hex}"})
        hanging = uuid.uuid4().hex[:8]
        make_namespace("verify", labels={"tenant": hanging})
        credentials.create({
            "registries": [registry_entry(tarpit.address, "robot", source)],
            "namespaceSelector": {"matchLabels": {"tenant": hanging}},
            "verify": VERIFY,
        })
        assert tarpit.accepted.wait(60), "the operator never checked the registry"

        tenant = uuid.uuid4().hex[:8]
        namespace = make_namespace("verify", labels={"tenant": tenant})
        name = credentials.create({
            "registries": [registry_entry("registry.example:5000", "robot", source)],
            "namespaceSelector": {"matchLabels": {"tenant": tenant}},
        })
        wait_for(lambda: replica(cluster, namespace, name), what="the other credential's replica")
        assert not tarpit.hung_up.is_set(), "replication waited for the registry check to time out"
    finally:
        tarpit.close()


def kubectl_regcred_verify(cluster, name: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "regcred.plugin", "verify", name, "--kubeconfig", str(cluster.kubeconfig), *extra],
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_kubectl_regcred_verify_checks_on_demand_and_tells_tls_failures_apart(
    cluster, registry, operator_namespace, running_operator, make_namespace, credentials, sources, wait_for
):
    tenant = uuid.uuid4().hex[:8]
    make_namespace("verify", labels={"tenant": tenant})
    source = sources.create({"password": registry.password})
    name = credentials.create({
        "registries": [registry_entry(registry.address, registry.username, source)],
        "namespaceSelector": {"matchLabels": {"tenant": tenant}},
    })
    credentials.wait_ready(name)
    namespace_flags = ("--operator-namespace", operator_namespace)

    trusted = kubectl_regcred_verify(cluster, name, *namespace_flags, "--registry-ca-file", str(registry.ca_file))
    assert trusted.returncode == 0, trusted.stderr
    assert "Valid" in trusted.stdout and registry.password not in trusted.stdout + trusted.stderr

    untrusted = kubectl_regcred_verify(cluster, name, *namespace_flags, "-o", "json")
    assert untrusted.returncode == 1
    [check] = json.loads(untrusted.stdout)
    assert check["result"] == "TLSError" and "certificate" in check["message"]
