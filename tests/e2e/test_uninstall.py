"""Uninstalling, in both orders docs/uninstall.md gives, with the real manifests on a cluster of its own.

Each test installs `deploy/` as a user would (`kubectl apply --server-side -k deploy/`),
runs the operator as deploy/'s ServiceAccount (the cluster has no kubelet, so the
Deployment's Pods never start: the operator runs in-process with that identity), applies
the quick start's example objects (one credential fanned out to two namespaces), and
then uninstalls. The control plane is this module's own: deleting the CRDs and the
operator's namespace would pull them from under every other test of the session.
"""

from __future__ import annotations

import io
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from testcluster import Cluster, local_cluster

from regcred.config import OperatorConfig
from regcred.handlers.runner import OperatorThread
from regcred.models import API_GROUP, API_VERSION, FINALIZER, PLURAL, TENANT_KIND, TENANT_PLURAL
from regcred.planning.plan import ADDED_PULL_SECRETS_ANNOTATION
from regcred.plugin import main as kubectl_regcred

from e2e.conftest import (
    CRDS,
    CRD_NAMES,
    DEPLOY,
    DEPLOYED_NAMESPACE,
    OPERATOR_ACCOUNT,
    REPO,
    TOKEN_SECONDS,
    Kubectl,
    OperatorIdentity,
    poll,
    token_kubeconfig,
)

EXAMPLES = REPO / "examples"
CHART = DEPLOY / "chart"
SERVED = ("team-frontend", "team-backend")  # what examples/30-registrycredential.yaml selects
OUTSIDE = "other-tenant"  # an example namespace it does not select
CREDENTIAL = yaml.safe_load((EXAMPLES / "30-registrycredential.yaml").read_text())
SECRET_NAME = CREDENTIAL["spec"]["secretName"]
USERS_OWN_ENTRY = "team-registry"  # a pull secret the user put on the ServiceAccount


@pytest.fixture(scope="module")
def fresh(control_plane_bin: Path) -> Iterator[tuple[Cluster, Kubectl]]:
    with local_cluster() as started:
        yield started, Kubectl(control_plane_bin / "kubectl", started.kubeconfig)


def install(
    cluster: Cluster, kubectl: Kubectl, workdir: Path, apply_install: Callable[[], object] | None = None
) -> OperatorThread:
    """The install (deploy/, unless `apply_install` does it otherwise) and the quick start's
    examples applied; the operator running as the install's ServiceAccount."""
    if apply_install is None:
        kubectl("apply", "--server-side", "-k", str(DEPLOY))
    else:
        apply_install()
    kubectl("wait", "--for=condition=Established", *(f"crd/{name}" for name in CRD_NAMES), "--timeout=60s")
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(expiration_seconds=TOKEN_SECONDS))
    token = cluster.core.create_namespaced_service_account_token(
        OPERATOR_ACCOUNT, DEPLOYED_NAMESPACE, request
    ).status.token
    identity = OperatorIdentity(DEPLOYED_NAMESPACE, token_kubeconfig(cluster.kubeconfig, token, workdir / "kc"), [])
    poll(lambda: identity.may("patch", "serviceaccounts"), what="the operator's RBAC to take effect")
    identity.api_client.close()
    for example in ("20-tenant-namespaces.yaml", "10-source-secret.yaml", "30-registrycredential.yaml"):
        kubectl("apply", "-f", str(EXAMPLES / example))
    for namespace in SERVED:
        poll(lambda: default_account(cluster, namespace), what=f"the default ServiceAccount of {namespace}")
        cluster.core.patch_namespaced_service_account(
            "default", namespace, {"imagePullSecrets": [{"name": USERS_OWN_ENTRY}]}
        )
    operator = OperatorThread(
        OperatorConfig(operator_namespace=DEPLOYED_NAMESPACE, resync_seconds=4.0), kubeconfig=str(identity.kubeconfig)
    ).start()
    for namespace in SERVED:
        poll(lambda: SECRET_NAME in pull_secrets(cluster, namespace), what=f"the entry in {namespace}")
        poll(lambda: replicas(cluster, namespace), what=f"the replica in {namespace}")
    return operator


def default_account(cluster: Cluster, namespace: str) -> client.V1ServiceAccount | None:
    try:
        return cluster.core.read_namespaced_service_account("default", namespace)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise


def pull_secrets(cluster: Cluster, namespace: str) -> list[str]:
    account = default_account(cluster, namespace)
    return [ref.name for ref in (account.image_pull_secrets or [])] if account else []


def replicas(cluster: Cluster, namespace: str | None = None) -> list[str]:
    selector = "app.kubernetes.io/managed-by=regcred-operator"
    if namespace is None:
        found = cluster.core.list_secret_for_all_namespaces(label_selector=selector).items
    else:
        found = cluster.core.list_namespaced_secret(namespace, label_selector=selector).items
    return [f"{secret.metadata.namespace}/{secret.metadata.name}" for secret in found]


def deleting_credential(cluster: Cluster) -> Callable[[], dict | None]:
    """The example credential once its deletion has begun (a CRD's deletion reaches it asynchronously)."""

    def check() -> dict | None:
        body = cluster.custom.get_cluster_custom_object(API_GROUP, API_VERSION, PLURAL, CREDENTIAL["metadata"]["name"])
        return body if body["metadata"].get("deletionTimestamp") else None

    return check


def terminating(cluster: Cluster) -> list[str]:
    """Namespaces and CRDs stuck in deletion."""
    namespaces = [ns.metadata.name for ns in cluster.core.list_namespace().items if ns.metadata.deletion_timestamp]
    crds = [crd.metadata.name for crd in cluster.apiext.list_custom_resource_definition().items
            if crd.metadata.deletion_timestamp]
    return namespaces + crds


def crds_left(cluster: Cluster) -> set[str]:
    names = {crd.metadata.name for crd in cluster.apiext.list_custom_resource_definition().items}
    return names & set(CRD_NAMES)


def gone(cluster: Cluster) -> bool:
    """The operator's namespace and CRDs are gone, and nothing else is being deleted."""
    names = {ns.metadata.name for ns in cluster.core.list_namespace().items}
    return DEPLOYED_NAMESPACE not in names and not crds_left(cluster) and not terminating(cluster)


def assert_nothing_left(cluster: Cluster) -> None:
    assert replicas(cluster) == []
    for namespace in SERVED:
        account = default_account(cluster, namespace)
        assert [ref.name for ref in account.image_pull_secrets or []] == [USERS_OWN_ENTRY]
        assert ADDED_PULL_SECRETS_ANNOTATION not in (account.metadata.annotations or {})
    assert terminating(cluster) == []


def test_credentials_first_then_the_install(fresh, tmp_path: Path) -> None:
    """The order docs/uninstall.md recommends: the running operator cleans up, then the install goes."""
    cluster, kubectl = fresh
    operator = install(cluster, kubectl, tmp_path)
    try:
        kubectl("delete", "registrycredentials", "--all", "--timeout=60s")
        kubectl("delete", "tenantregistrycredentials", "--all", "--all-namespaces", "--timeout=60s")
    finally:
        operator.stop()
    kubectl("delete", "-k", str(DEPLOY), "--timeout=60s")
    poll(lambda: gone(cluster), timeout=60, what="the install to be gone")
    assert_nothing_left(cluster)


def test_whole_install_in_one_command_then_kubectl_regcred_uninstall(fresh, tmp_path: Path) -> None:
    """The reported hang: the operator's identity goes with the install, the credential waits for it.

    kubectl sends the deletes of `delete -k` in the kustomization's order without waiting
    between them, so the operator's ServiceAccount and RBAC are gone before the credential's
    deletion (the CRD's) reaches it; `kubectl regcred uninstall` then finishes the job.
    """
    cluster, kubectl = fresh
    operator = install(cluster, kubectl, tmp_path)
    # Not the operator's: a Secret of the replicas' name and an entry naming it, by hand,
    # in a namespace the credential does not select. They must stay.
    cluster.core.create_namespaced_secret(OUTSIDE, client.V1Secret(
        metadata=client.V1ObjectMeta(name=SECRET_NAME), string_data={"note": "the user's own"},
    ))
    cluster.core.patch_namespaced_service_account("default", OUTSIDE, {"imagePullSecrets": [{"name": SECRET_NAME}]})
    kubectl("delete", "-k", str(DEPLOY), "--wait=false")
    operator.stop()  # the kubelet would stop its Pod as the namespace goes
    stuck = poll(deleting_credential(cluster), what="the CRD's deletion to reach the credential")
    assert FINALIZER in stuck["metadata"]["finalizers"]
    assert sorted(replicas(cluster)) == sorted(f"{namespace}/{SECRET_NAME}" for namespace in SERVED)

    out = io.StringIO()
    assert kubectl_regcred(["uninstall", "--yes", "--kubeconfig", str(cluster.kubeconfig)], out) == 0
    # The garbage collector may delete replicas first: they carry the credential's ownerReference.
    assert out.getvalue().endswith(" replicas and the entries of 2 ServiceAccounts in 2 namespaces\n")
    poll(lambda: gone(cluster), timeout=60, what="the install to be gone")
    assert_nothing_left(cluster)
    assert cluster.core.read_namespaced_secret(SECRET_NAME, OUTSIDE).data
    assert pull_secrets(cluster, OUTSIDE) == [SECRET_NAME]


def test_kubectl_regcred_uninstall_before_the_install_goes(fresh, tmp_path: Path) -> None:
    """The one-command order with `kubectl regcred uninstall` first, the operator still running;
    a TenantRegistryCredential's finalizer and leftovers go the same way."""
    cluster, kubectl = fresh
    operator = install(cluster, kubectl, tmp_path)
    tenant_home = SERVED[1]
    cluster.core.create_namespaced_secret(tenant_home, client.V1Secret(
        metadata=client.V1ObjectMeta(name="team-robot"), string_data={"username": "robot", "password": "pw"},
    ))
    cluster.custom.create_namespaced_custom_object(API_GROUP, API_VERSION, tenant_home, TENANT_PLURAL, {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": TENANT_KIND,
        "metadata": {"name": "team"},
        "spec": {
            "secretName": "team-pull",
            "registries": [{"server": "registry.team.example", "passwordSecretRef": {"name": "team-robot"}}],
            "serviceAccounts": ["default"],
        },
    })
    poll(lambda: "team-pull" in pull_secrets(cluster, tenant_home), what="the tenant credential's entry")
    try:
        # The running operator sees the deletions too and may clean up first: either way, nothing is left.
        assert kubectl_regcred(["uninstall", "--yes", "--kubeconfig", str(cluster.kubeconfig)], io.StringIO()) == 0
    finally:
        operator.stop()
    # kubectl waits for every object it deleted: it returns only once nothing is left Terminating.
    kubectl("delete", "-k", str(DEPLOY), "--timeout=60s")
    poll(lambda: gone(cluster), timeout=60, what="the install to be gone")
    assert_nothing_left(cluster)


def test_helm_uninstall_then_the_crds_then_kubectl_regcred_uninstall(fresh, helm_bin: Path, tmp_path: Path) -> None:
    """Helm keeps the CRDs, so the credentials outlive the operator; deleting the CRDs then hangs
    on their finalizers until `kubectl regcred uninstall` runs."""
    cluster, kubectl = fresh
    helm = [str(helm_bin), "--kubeconfig", str(cluster.kubeconfig), "--namespace", DEPLOYED_NAMESPACE]

    def helm_install() -> None:
        subprocess.run([*helm, "install", "regcred-operator", str(CHART), "--create-namespace"], check=True)

    operator = install(cluster, kubectl, tmp_path, helm_install)
    subprocess.run([*helm, "uninstall", "regcred-operator"], check=True)
    operator.stop()
    kubectl("delete", "-k", str(CRDS), "--wait=false")
    stuck = poll(deleting_credential(cluster), what="the CRD's deletion to reach the credential")
    assert FINALIZER in stuck["metadata"]["finalizers"]
    assert sorted(replicas(cluster)) == sorted(f"{namespace}/{SECRET_NAME}" for namespace in SERVED)

    assert kubectl_regcred(["uninstall", "--yes", "--kubeconfig", str(cluster.kubeconfig)], io.StringIO()) == 0
    poll(lambda: not crds_left(cluster), timeout=60, what="the CRDs to be gone")
    assert_nothing_left(cluster)
    # What helm leaves by design (docs/uninstall.md): the namespace, with the source Secret.
    assert cluster.core.read_namespaced_secret("acme-robot", DEPLOYED_NAMESPACE)
    kubectl("delete", "namespace", DEPLOYED_NAMESPACE, "--timeout=60s")
