"""The operator's own identity, fenced beyond RBAC: what its ServiceAccount's token can write.

RBAC cannot tell Secrets apart by type or label, so the ClusterRole deploy/ gives the
operator lets its token create any Secret (a `kubernetes.io/service-account-token` one
mints a token for any ServiceAccount), rewrite or delete foreign ones, and patch any part
of any ServiceAccount. deploy/base/operator-writes.yaml, a ValidatingAdmissionPolicy
matched to that ServiceAccount's username, narrows it to what the operator writes. Each
request here is sent with a real token of that ServiceAccount, holding the install's
ClusterRole and Role, on a real API server with the policy in force; the operator's own
writes are made by its own planner and request code (regcred.planning, regcred.kube).
The whole end-to-end suite also runs the operator under this policy (tests/e2e/conftest.py).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from kubernetes import client

from e2e.conftest import Kubectl, OperatorIdentity, installed_identity, stuck_pod_rights_for
from regcred.errors import ForbiddenError
from regcred.kube.client import MERGE_PATCH, KubeClient, object_path
from regcred.kube.paths import secrets_path
from regcred.kube.reads import read_secret_state, read_service_account_state
from regcred.kube.writes import apply_write
from regcred.planning.dockerconfig import content_hash, kubectl_auth_entry, render_docker_config
from regcred.planning.plan import (
    ADDED_PULL_SECRETS_ANNOTATION,
    CREDENTIAL_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    CredentialIntent,
    NamespaceView,
    OutcomeKind,
    plan_namespace,
)

pytestmark = pytest.mark.e2e

DOCKER_CONFIG_TYPE = "kubernetes.io/dockerconfigjson"
REPLICA_LABELS = {MANAGED_BY_LABEL: MANAGED_BY_VALUE, CREDENTIAL_LABEL: "acme"}
POLICY = "regcred-operator"  # every refusal message of the policy names the operator
APP_ACCOUNT = "app"
IMAGE = "registry.acme.example:5000/team/web:1.0"


@dataclass
class Fenced:
    """The operator's identity as installed (in its own namespace) and a tenant namespace."""

    cluster: Any
    identity: OperatorIdentity
    kube: KubeClient  # the operator's own client, authenticated as the ServiceAccount
    namespace: str  # a tenant namespace with a ServiceAccount `app`

    def refusal(self, method: str, path: str, body: Any = None, content_type: str | None = None) -> str | None:
        """Send one request as the operator's ServiceAccount: the refusal, or None."""
        try:
            self.kube.request(method, path, body=body, content_type=content_type)
        except ForbiddenError as error:
            return str(error)
        return None

    def create_secret(self, name: str, type_: str, labels: dict[str, str], namespace: str | None = None,
                      annotations: dict[str, str] | None = None) -> str | None:
        namespace = namespace or self.namespace
        body = {
            "apiVersion": "v1", "kind": "Secret", "type": type_,
            "metadata": {"name": name, "labels": labels, "annotations": annotations or {}},
        }
        if type_ == DOCKER_CONFIG_TYPE:
            body["data"] = {".dockerconfigjson": base64.b64encode(b'{"auths":{}}').decode()}
        return self.refusal("POST", secrets_path(namespace), body)

    def secret_exists(self, name: str, namespace: str | None = None) -> bool:
        found = self.cluster.core.list_namespaced_secret(
            namespace or self.namespace, field_selector=f"metadata.name={name}"
        )
        return bool(found.items)

    def patch_account(self, patch: dict[str, Any]) -> str | None:
        path = object_path("v1", "serviceaccounts", self.namespace, APP_ACCOUNT)
        return self.refusal("PATCH", path, patch, MERGE_PATCH)

    def account(self) -> client.V1ServiceAccount:
        return self.cluster.core.read_namespaced_service_account(APP_ACCOUNT, self.namespace)


@pytest.fixture(scope="module")
def fenced(cluster, kubectl: Kubectl, tmp_path_factory) -> Iterator[Fenced]:
    home = f"regcred-fence-{uuid.uuid4().hex[:8]}"
    tenant = f"fence-tenant-{uuid.uuid4().hex[:8]}"
    for name in (home, tenant):
        cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        with (
            installed_identity(cluster, kubectl, home, tmp_path_factory.mktemp("fence")) as identity,
            # As installed with the opt-in component: the delete right the policy narrows.
            stuck_pod_rights_for(kubectl, identity),
        ):
            kube = KubeClient(identity.api_client)
            yield Fenced(cluster, identity, kube, tenant)
    finally:
        for name in (tenant, home):
            cluster.core.delete_namespace(name)


@pytest.fixture(autouse=True)
def app_account(fenced: Fenced) -> None:
    """Each test starts with the ServiceAccount `app` as its owner made it (a refusal test
    that fails must not leave its change for the next test)."""
    core = fenced.cluster.core
    try:
        # A finalizer some test managed to add would keep the old one.
        core.patch_namespaced_service_account(APP_ACCOUNT, fenced.namespace, {"metadata": {"finalizers": None}})
        core.delete_namespaced_service_account(APP_ACCOUNT, fenced.namespace)
    except client.ApiException as error:
        if error.status != 404:
            raise
    core.create_namespaced_service_account(fenced.namespace, client.V1ServiceAccount(
        metadata=client.V1ObjectMeta(name=APP_ACCOUNT, labels={"team": "web"}, annotations={"owner": "web"}),
        secrets=[client.V1ObjectReference(name="app-token")],
        image_pull_secrets=[client.V1LocalObjectReference(name="team-own")],
    ))


def refused_by_the_policy(message: str | None) -> bool:
    # A refusal by RBAC would not do: RBAC grants all of these.
    return message is not None and POLICY in message and "ValidatingAdmissionPolicy" in message


# -- Secrets the operator never writes ------------------------------------------------
def test_a_service_account_token_secret_is_refused(fenced: Fenced):
    name = f"minted-{uuid.uuid4().hex[:6]}"
    message = fenced.create_secret(
        name, "kubernetes.io/service-account-token", REPLICA_LABELS,
        annotations={"kubernetes.io/service-account.name": APP_ACCOUNT},
    )
    assert refused_by_the_policy(message), message
    assert not fenced.secret_exists(name)


def test_a_service_account_token_secret_in_kube_system_is_refused(fenced: Fenced):
    # A dry run: before the policy this request succeeded, and would have minted a token
    # for kube-system's default ServiceAccount.
    body = {
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": f"minted-{uuid.uuid4().hex[:6]}",
                     "annotations": {"kubernetes.io/service-account.name": "default"}},
    }
    try:
        fenced.kube.request("POST", secrets_path("kube-system"), query={"dryRun": "All"}, body=body)
        message = None
    except ForbiddenError as error:
        message = str(error)
    assert refused_by_the_policy(message), message


@pytest.mark.parametrize(
    ("type_", "labels"),
    [
        ("Opaque", REPLICA_LABELS),
        ("Opaque", {}),
        (DOCKER_CONFIG_TYPE, {}),
        (DOCKER_CONFIG_TYPE, {MANAGED_BY_LABEL: MANAGED_BY_VALUE}),
        (DOCKER_CONFIG_TYPE, {CREDENTIAL_LABEL: "acme"}),
        (DOCKER_CONFIG_TYPE, {MANAGED_BY_LABEL: "someone-else", CREDENTIAL_LABEL: "acme"}),
    ],
    ids=["opaque-with-labels", "opaque", "unlabelled", "no-credential-label", "no-managed-by",
         "managed-by-another"],
)
def test_a_secret_that_is_not_a_replica_is_refused(fenced: Fenced, type_: str, labels: dict[str, str]):
    name = f"not-replica-{uuid.uuid4().hex[:6]}"
    message = fenced.create_secret(name, type_, labels)
    assert refused_by_the_policy(message), message
    assert not fenced.secret_exists(name)


def foreign_secret(fenced: Fenced) -> str:
    """A dockerconfigjson Secret someone else made, without the operator's labels."""
    name = f"foreign-{uuid.uuid4().hex[:6]}"
    fenced.cluster.core.create_namespaced_secret(fenced.namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name=name), type=DOCKER_CONFIG_TYPE,
        data={".dockerconfigjson": base64.b64encode(b'{"auths":{}}').decode()},
    ))
    return name


def test_a_foreign_secret_cannot_be_adopted_rewritten_or_deleted(fenced: Fenced):
    name = foreign_secret(fenced)
    path = secrets_path(fenced.namespace, name)
    adopt = {"metadata": {"labels": REPLICA_LABELS}, "stringData": {".dockerconfigjson": '{"auths":{"x":{}}}'}}
    assert refused_by_the_policy(fenced.refusal("PATCH", path, adopt, MERGE_PATCH))
    assert refused_by_the_policy(fenced.refusal("DELETE", path))
    secret = fenced.cluster.core.read_namespaced_secret(name, fenced.namespace)
    assert not secret.metadata.labels and secret.data[".dockerconfigjson"] == base64.b64encode(
        b'{"auths":{}}').decode()


APPLY_PATCH = "application/apply-patch+yaml"
JSON_PATCH = "application/json-patch+json"


def test_no_write_route_gets_past_the_policy(fenced: Fenced):
    """Server-side apply (creating, and taking over a foreign Secret) and JSON patch are
    admitted as CREATE and UPDATE like any other write: each is refused. (Update, PUT, is
    not granted by RBAC at all.)"""
    opaque = f"applied-{uuid.uuid4().hex[:6]}"
    applied = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
               "metadata": {"name": opaque, "labels": REPLICA_LABELS}, "stringData": {"k": "v"}}
    path = secrets_path(fenced.namespace, opaque) + "?fieldManager=regcred-operator&force=true"
    assert refused_by_the_policy(fenced.refusal("PATCH", path, applied, APPLY_PATCH))
    assert not fenced.secret_exists(opaque)

    foreign = foreign_secret(fenced)
    path = secrets_path(fenced.namespace, foreign)
    taken = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": foreign, "labels": REPLICA_LABELS}}
    assert refused_by_the_policy(
        fenced.refusal("PATCH", path + "?fieldManager=regcred-operator&force=true", taken, APPLY_PATCH)
    )
    labelled = [{"op": "add", "path": "/metadata/labels", "value": REPLICA_LABELS}]
    assert refused_by_the_policy(fenced.refusal("PATCH", path, labelled, JSON_PATCH))
    assert not fenced.cluster.core.read_namespaced_secret(foreign, fenced.namespace).metadata.labels


def test_a_replica_cannot_be_unlabelled(fenced: Fenced):
    name = f"replica-{uuid.uuid4().hex[:6]}"
    assert fenced.create_secret(name, DOCKER_CONFIG_TYPE, REPLICA_LABELS) is None
    path = secrets_path(fenced.namespace, name)
    released = {"metadata": {"labels": {MANAGED_BY_LABEL: None}}}
    assert refused_by_the_policy(fenced.refusal("PATCH", path, released, MERGE_PATCH))
    assert fenced.refusal("DELETE", path) is None, "its own replica it may delete"


# -- ServiceAccounts: imagePullSecrets and regcred.dev/ annotations only ---------------
@pytest.mark.parametrize(
    "patch",
    [
        {"secrets": [{"name": "app-token"}, {"name": "stolen-token"}]},
        {"secrets": None},
        {"automountServiceAccountToken": True},
        {"metadata": {"annotations": {"owner": "attacker"}}},
        {"metadata": {"annotations": {"owner": None}}},
        {"metadata": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/admin"}}},
        {"metadata": {"labels": {"team": "other"}}},
        {"metadata": {"finalizers": ["example.com/hold"]}},
        {"imagePullSecrets": [{"name": "acme-pull"}], "metadata": {"annotations": {"owner": "x"}}},
    ],
    ids=["add-secret", "drop-secrets", "automount", "change-annotation", "remove-annotation",
         "add-annotation", "label", "finalizer", "pull-secret-and-annotation"],
)
def test_a_service_account_patch_beyond_pull_secrets_and_own_annotations_is_refused(
    fenced: Fenced, patch: dict[str, Any]
):
    before = fenced.account()
    assert refused_by_the_policy(fenced.patch_account(patch)), patch
    after = fenced.account()
    assert after.metadata.resource_version == before.metadata.resource_version


def test_pull_secrets_and_any_regcred_annotation_may_change(fenced: Fenced):
    patch = {
        "imagePullSecrets": [{"name": "team-own"}, {"name": "acme-pull"}],
        "metadata": {"annotations": {ADDED_PULL_SECRETS_ANNOTATION: "acme-pull",
                                     "regcred.dev/some-future-record": json.dumps(["acme-pull"])}},
    }
    assert fenced.patch_account(patch) is None
    account = fenced.account()
    assert [ref.name for ref in account.image_pull_secrets] == ["team-own", "acme-pull"]
    assert account.metadata.annotations["owner"] == "web"
    assert fenced.patch_account({"imagePullSecrets": [{"name": "team-own"}],
                                 "metadata": {"annotations": {ADDED_PULL_SECRETS_ANNOTATION: None,
                                                              "regcred.dev/some-future-record": None}}}) is None


# -- Pods (with the restart-stuck-pods component): only stuck ones a controller recreates -----
def pod(fenced: Fenced, owned: bool, waiting: str | None) -> str:
    """A Pod in the tenant namespace, maybe controlled by a ReplicaSet, maybe waiting for a
    reason (written through pods/status as the kubelet would; no kubelet runs here)."""
    core, namespace = fenced.cluster.core, fenced.namespace
    name = f"pod-{uuid.uuid4().hex[:6]}"
    owners = None
    if owned:
        replica_set = client.AppsV1Api(fenced.cluster.api_client).create_namespaced_replica_set(
            namespace, client.V1ReplicaSet(
                metadata=client.V1ObjectMeta(name=f"rs-{name}"),
                spec=client.V1ReplicaSetSpec(
                    replicas=1, selector=client.V1LabelSelector(match_labels={"app": name}),
                    template=client.V1PodTemplateSpec(
                        metadata=client.V1ObjectMeta(labels={"app": name}),
                        spec=client.V1PodSpec(containers=[client.V1Container(name="web", image=IMAGE)]),
                    ),
                ),
            ),
        )
        owners = [client.V1OwnerReference(
            api_version="apps/v1", kind="ReplicaSet", name=replica_set.metadata.name,
            uid=replica_set.metadata.uid, controller=True,
        )]
    core.create_namespaced_pod(namespace, client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={"app": name}, owner_references=owners),
        spec=client.V1PodSpec(service_account_name=APP_ACCOUNT,
                              containers=[client.V1Container(name="web", image=IMAGE)]),
    ))
    if waiting:
        core.patch_namespaced_pod_status(name, namespace, {"status": {"containerStatuses": [{
            "name": "web", "image": IMAGE, "imageID": "", "ready": False, "restartCount": 0,
            "state": {"waiting": {"reason": waiting}},
        }]}})
    return name


@pytest.mark.parametrize(
    ("owned", "waiting"),
    [(False, "ImagePullBackOff"), (True, None), (True, "CrashLoopBackOff")],
    ids=["stuck-without-controller", "controlled-not-waiting", "controlled-crash-looping"],
)
def test_a_pod_that_is_not_stuck_pulling_under_a_controller_cannot_be_deleted(
    fenced: Fenced, owned: bool, waiting: str | None
):
    name = pod(fenced, owned, waiting)
    assert refused_by_the_policy(fenced.refusal("DELETE", object_path("v1", "pods", fenced.namespace, name)))
    assert fenced.cluster.core.read_namespaced_pod(name, fenced.namespace)


def test_a_stuck_pod_under_a_controller_may_be_deleted(fenced: Fenced):
    for reason in ("ErrImagePull", "ImagePullBackOff"):
        name = pod(fenced, owned=True, waiting=reason)
        assert fenced.refusal("DELETE", object_path("v1", "pods", fenced.namespace, name)) is None


# -- the operator's real writes pass ------------------------------------------------------
def converge(fenced: Fenced, intent: CredentialIntent, targeted: bool) -> OutcomeKind:
    """Plan and apply one namespace with the operator's own code, as the operator's identity."""
    kube, namespace = fenced.kube, fenced.namespace
    for _ in range(3):
        secret = read_secret_state(kube, namespace, intent.secret_name)
        account = read_service_account_state(kube, namespace, APP_ACCOUNT)
        assert account is not None
        view = NamespaceView(
            namespace=namespace, targeted=targeted, claimed_by=None,
            secrets={secret.name: secret} if secret else {}, service_accounts=(account,),
        )
        plan = plan_namespace(view, intent)
        if not plan.writes:
            return plan.outcome.kind
        for write in plan.writes:
            apply_write(kube, write)
    pytest.fail("the namespace did not converge")


def intent_with(password: str) -> CredentialIntent:
    config = render_docker_config({"registry.acme.example": kubectl_auth_entry("robot", password, None)})
    return CredentialIntent(
        name="acme", uid=str(uuid.uuid4()), secret_name=f"acme-pull-{uuid.uuid4().hex[:6]}",
        service_account_globs=(APP_ACCOUNT,), docker_config=config, content_hash=content_hash(config),
    )


def test_the_operators_own_writes_pass_fan_out_rotation_and_cleanup(fenced: Fenced):
    first = intent_with("first-password")
    assert converge(fenced, first, targeted=True) is OutcomeKind.SYNCED
    replica = fenced.cluster.core.read_namespaced_secret(first.secret_name, fenced.namespace)
    assert replica.type == DOCKER_CONFIG_TYPE
    assert first.secret_name in [ref.name for ref in fenced.account().image_pull_secrets]

    rotated = replace(intent_with("rotated-password"), uid=first.uid, secret_name=first.secret_name)
    assert converge(fenced, rotated, targeted=True) is OutcomeKind.SYNCED
    data = fenced.cluster.core.read_namespaced_secret(first.secret_name, fenced.namespace).data
    assert b"rotated-password" in base64.b64decode(data[".dockerconfigjson"])

    converge(fenced, rotated, targeted=False)  # the namespace stops matching: cleanup
    assert not fenced.secret_exists(first.secret_name)
    account = fenced.account()
    assert [ref.name for ref in account.image_pull_secrets] == ["team-own"]
    assert account.metadata.annotations == {"owner": "web"}
    assert [ref.name for ref in account.secrets] == ["app-token"]


def test_the_policy_fences_only_the_operator(fenced: Fenced):
    """Everyone else (here the cluster admin) writes any Secret as before."""
    name = f"admin-opaque-{uuid.uuid4().hex[:6]}"
    fenced.cluster.core.create_namespaced_secret(fenced.namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name=name), type="Opaque", string_data={"k": "v"},
    ))
    assert fenced.secret_exists(name)
    foreign = foreign_secret(fenced)
    fenced.cluster.core.delete_namespaced_secret(foreign, fenced.namespace)
