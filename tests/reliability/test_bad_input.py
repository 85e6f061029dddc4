"""Malformed RegistryCredentials are refused at admission; malformed sources are reported.

Admission: each row mutates one field of a valid credential and must be refused by
`kubectl apply --validate=strict --dry-run=server` with an error that names the
field's path. `--validate=strict` makes kubectl send fieldValidation=Strict: without
it the API server only warns about an unknown field and prunes it, so a typo such as
`pasword` would be stored silently as if the field were absent. (It is also kubectl's
default; it is spelled out so the test does not depend on that default.) The pydantic
models must refuse the same specs, as the operator validates again at its edge.

Sources: the API server itself refuses some bad docker configs (invalid JSON, a JSON
string or array, a missing `.dockerconfigjson` key in a kubernetes.io/dockerconfigjson
Secret); those cannot reach the operator, and a row checks the server still refuses
them. Everything it accepts is fed to a credential whose replicas already exist: the
status names a distinct reason and the replicas stay byte-identical.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import uuid
from typing import Any

import pytest
from harness import current_condition
from kubernetes import client
from pydantic import ValidationError

from e2e.conftest import poll
from e2e.objects import SERVER, tenant_spec
from regcred.models import API_GROUP, API_VERSION, KIND, RegistryCredentialSpec

DELETE = object()  # a row's value that removes the field
VALID_SPEC: dict[str, Any] = {
    "secretName": "pull",
    "registries": [
        {"server": SERVER, "username": "robot", "email": "ci@acme.example", "passwordSecretRef": {"name": "src"}}
    ],
    "dockerConfigSecretRefs": [{"name": "legacy"}],
    "namespaceSelector": {
        "matchLabels": {"tenant": "acme"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["prod"]}],
    },
    "namespaces": ["team-*"],
    "excludeNamespaces": ["team-sandbox"],
    "serviceAccounts": ["default"],
}


def many(count: int, make) -> list:
    return [make(index) for index in range(count)]


# (case, path of the field to set, value, the field path the error must name)
ADMISSION_CASES = [
    ("no spec", "spec", DELETE, "spec"),
    ("no source at all", "spec", {"namespaces": ["team-*"]}, "spec"),
    ("server missing", "spec.registries[0].server", DELETE, "spec.registries[0].server"),
    ("server not a string", "spec.registries[0].server", 5000, "spec.registries[0].server"),
    ("server empty", "spec.registries[0].server", "", "spec.registries[0].server"),
    ("server with a space", "spec.registries[0].server", "registry acme", "spec.registries[0].server"),
    ("server with a scheme other than http(s)", "spec.registries[0].server", "ftp://registry.acme", "spec.registries[0].server"),
    ("server with a query", "spec.registries[0].server", "registry.acme/v2?x=1", "spec.registries[0].server"),
    ("server with a six-digit port", "spec.registries[0].server", "registry.acme:123456", "spec.registries[0].server"),
    ("server too long", "spec.registries[0].server", "r" * 254, "spec.registries[0].server"),
    ("username empty", "spec.registries[0].username", "", "spec.registries[0].username"),
    ("username too long", "spec.registries[0].username", "u" * 257, "spec.registries[0].username"),
    ("username with a colon", "spec.registries[0].username", "robot:ci", "spec.registries[0].username"),
    ("username with a newline", "spec.registries[0].username", "robot\nci", "spec.registries[0].username"),
    ("email without @", "spec.registries[0].email", "ci.acme.example", "spec.registries[0].email"),
    ("passwordSecretRef missing", "spec.registries[0].passwordSecretRef", DELETE, "spec.registries[0].passwordSecretRef"),
    ("passwordSecretRef a string", "spec.registries[0].passwordSecretRef", "src", "spec.registries[0].passwordSecretRef"),
    ("passwordSecretRef.name missing", "spec.registries[0].passwordSecretRef.name", DELETE, "spec.registries[0].passwordSecretRef.name"),
    ("passwordSecretRef.name uppercase", "spec.registries[0].passwordSecretRef.name", "Src", "spec.registries[0].passwordSecretRef.name"),
    ("passwordSecretRef.namespace with dots", "spec.registries[0].passwordSecretRef.namespace", "a.b", "spec.registries[0].passwordSecretRef.namespace"),
    ("passwordSecretRef.key with a slash", "spec.registries[0].passwordSecretRef.key", "pass/word", "spec.registries[0].passwordSecretRef.key"),
    ("registries an object", "spec.registries", {"server": SERVER}, "spec.registries"),
    ("33 registries", "spec.registries", many(33, lambda i: {"server": f"r{i}.example", "passwordSecretRef": {"name": "src"}}), "spec.registries"),
    ("dockerConfigSecretRefs[0].name missing", "spec.dockerConfigSecretRefs[0].name", DELETE, "spec.dockerConfigSecretRefs[0].name"),
    ("17 dockerConfigSecretRefs", "spec.dockerConfigSecretRefs", many(17, lambda i: {"name": f"c{i}"}), "spec.dockerConfigSecretRefs"),
    ("secretName uppercase", "spec.secretName", "Pull", "spec.secretName"),
    ("secretName with an underscore", "spec.secretName", "pull_secret", "spec.secretName"),
    ("secretName too long", "spec.secretName", "p" * 254, "spec.secretName"),
    ("namespaces glob with brackets", "spec.namespaces[0]", "team-[ab]", "spec.namespaces[0]"),
    ("namespaces glob uppercase", "spec.namespaces[0]", "Team-*", "spec.namespaces[0]"),
    ("65 namespaces", "spec.namespaces", many(65, lambda i: f"ns-{i}"), "spec.namespaces"),
    ("excludeNamespaces glob starting with -", "spec.excludeNamespaces[0]", "-sandbox", "spec.excludeNamespaces[0]"),
    ("excludeNamespaces a string", "spec.excludeNamespaces", "team-sandbox", "spec.excludeNamespaces"),
    ("serviceAccounts entry uppercase", "spec.serviceAccounts[0]", "Default", "spec.serviceAccounts[0]"),
    ("serviceAccounts entry empty", "spec.serviceAccounts[0]", "", "spec.serviceAccounts[0]"),
    ("33 serviceAccounts", "spec.serviceAccounts", many(33, lambda i: f"sa-{i}"), "spec.serviceAccounts"),
    ("matchLabels key with a space", "spec.namespaceSelector.matchLabels", {"bad key": "x"}, "spec.namespaceSelector.matchLabels"),
    ("matchLabels value with a space", "spec.namespaceSelector.matchLabels.tenant", "a b", "spec.namespaceSelector.matchLabels.tenant"),
    ("matchLabels value too long", "spec.namespaceSelector.matchLabels.tenant", "v" * 64, "spec.namespaceSelector.matchLabels.tenant"),
    ("65 matchLabels", "spec.namespaceSelector.matchLabels", {f"k{i}": "v" for i in range(65)}, "spec.namespaceSelector.matchLabels"),
    ("matchExpressions unknown operator", "spec.namespaceSelector.matchExpressions[0].operator", "Equals", "spec.namespaceSelector.matchExpressions[0].operator"),
    ("matchExpressions In without values", "spec.namespaceSelector.matchExpressions[0].values", DELETE, "spec.namespaceSelector.matchExpressions[0].values"),
    ("matchExpressions Exists with values", "spec.namespaceSelector.matchExpressions[0].operator", "Exists", "spec.namespaceSelector.matchExpressions[0].values"),
    ("matchExpressions key invalid", "spec.namespaceSelector.matchExpressions[0].key", "-tier", "spec.namespaceSelector.matchExpressions[0].key"),
    ("matchExpressions value invalid", "spec.namespaceSelector.matchExpressions[0].values[0]", "prod!", "spec.namespaceSelector.matchExpressions[0].values[0]"),
    ("unknown field in spec", "spec.registry", "x", "spec.registry"),
    ("unknown field in a registry", "spec.registries[0].pasword", "x", "spec.registries[0].pasword"),
    ("unknown field in the selector", "spec.namespaceSelector.matchLabel", {"a": "b"}, "spec.namespaceSelector.matchLabel"),
    ("unknown top-level field", "specs", {}, "specs"),
    ("name longer than a label value", "metadata.name", "n" * 64, "metadata.name"),
]


def set_path(document: dict[str, Any], path: str, value: Any) -> None:
    """Set (or, with DELETE, remove) a field given as `a.b[0].c`."""
    steps: list[str | int] = [
        int(part[1:-1]) if part.startswith("[") else part for part in re.findall(r"[^.\[\]]+|\[\d+\]", path)
    ]
    parent: Any = document
    for step in steps[:-1]:
        parent = parent[step]
    if value is DELETE:
        del parent[steps[-1]]
    else:
        parent[steps[-1]] = value


def credential_document(name: str, path: str | None = None, value: Any = None) -> dict[str, Any]:
    document = {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": KIND,
        "metadata": {"name": name},
        "spec": copy.deepcopy(VALID_SPEC),
    }
    if path is not None:
        set_path(document, path, value)
    return document


def apply_dry_run(kubectl, document: dict[str, Any]):
    return kubectl(
        "apply", "--validate=strict", "--dry-run=server", "-f", "-", stdin=json.dumps(document), check=False
    )


def test_the_valid_base_is_accepted(kubectl, crd_installed) -> None:
    result = apply_dry_run(kubectl, credential_document("valid-base"))
    assert result.returncode == 0, result.stderr
    RegistryCredentialSpec.model_validate(VALID_SPEC)


@pytest.mark.parametrize(
    ("path", "value", "field"), [case[1:] for case in ADMISSION_CASES], ids=[case[0] for case in ADMISSION_CASES]
)
def test_malformed_credential_is_refused_naming_the_field(kubectl, crd_installed, path, value, field) -> None:
    document = credential_document(f"bad-{uuid.uuid4().hex[:8]}", path, value)
    result = apply_dry_run(kubectl, document)
    assert result.returncode != 0, f"admitted: {json.dumps(document)[:300]}"
    assert field in result.stderr, f"the error does not name {field}: {result.stderr}"
    if path.startswith("spec.") and "spec" in document:
        # The operator's own validation agrees with admission.
        with pytest.raises(ValidationError):
            RegistryCredentialSpec.model_validate(document["spec"])


# -- sources -----------------------------------------------------------------------
def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    ("case", "payload"),
    [
        ("invalid JSON", {".dockerconfigjson": b64(b'{"auths": {')}),
        ("a JSON string", {".dockerconfigjson": b64(b'"auths"')}),
        ("a JSON array", {".dockerconfigjson": b64(b"[]")}),
        ("no .dockerconfigjson key", {"config.json": b64(b'{"auths": {}}')}),
    ],
)
def test_the_api_server_refuses_these_docker_configs_itself(cluster, operator_namespace, case, payload) -> None:
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name=f"refused-{uuid.uuid4().hex[:8]}"),
        type="kubernetes.io/dockerconfigjson",
        data=payload,
    )
    with pytest.raises(client.ApiException) as refused:
        cluster.core.create_namespaced_secret(operator_namespace, secret)
    assert refused.value.status == 422, case


DOCKER_CONFIG = "kubernetes.io/dockerconfigjson"
# (case, source Secret type, its data, how the credential refers to it, expected reason)
SOURCE_CASES = [
    ("missing Secret", None, None, "password", "SourceSecretNotFound"),
    ("missing password key", "Opaque", {"token": b"x"}, "password", "SourceKeyNotFound"),
    ("empty password", "Opaque", {"password": b""}, "password", "SourceEmptyPassword"),
    ("non-UTF-8 password", "Opaque", {"password": b"\xff\xfe\xfd"}, "password", "SourceValueNotText"),
    ("Opaque Secret as docker config", "Opaque", {".dockerconfigjson": b'{"auths": {}}'}, "dockerconfig", "SourceWrongType"),
    ("docker config without auths", DOCKER_CONFIG, {".dockerconfigjson": b'{"credsStore": "x"}'}, "dockerconfig", "SourceInvalidDockerConfig"),
    ("docker config that is null", DOCKER_CONFIG, {".dockerconfigjson": b"null"}, "dockerconfig", "SourceInvalidDockerConfig"),
    ("auths entry not an object", DOCKER_CONFIG, {".dockerconfigjson": b'{"auths": {"r.example": "x"}}'}, "dockerconfig", "SourceInvalidDockerConfig"),
    ("docker config not UTF-8", DOCKER_CONFIG, {".dockerconfigjson": b'{"auths": {"r.example": {"password": "\xff"}}}'}, "dockerconfig", "SourceInvalidDockerConfig"),
    ("source outside the allowed namespaces", "Opaque", {"password": b"pw"}, "elsewhere", "SourceNamespaceNotAllowed"),
]


def source_spec(reference: str, secret: str, elsewhere: str) -> dict[str, Any]:
    """The spec fields that point the credential at the bad source (null removes the other kind)."""
    if reference == "dockerconfig":
        return {"registries": None, "dockerConfigSecretRefs": [{"name": secret}]}
    ref = {"name": secret, **({"namespace": elsewhere} if reference == "elsewhere" else {})}
    return {
        "registries": [{"server": SERVER, "username": "robot", "passwordSecretRef": ref}],
        "dockerConfigSecretRefs": None,
    }


def test_malformed_sources_are_reported_and_replicas_stay_byte_identical(
    cluster, make_namespace, credentials, sources, operator_process
) -> None:
    tenant = uuid.uuid4().hex[:8]
    namespaces = [make_namespace("src", labels={"tenant": tenant}) for _ in range(2)]
    elsewhere = make_namespace("elsewhere")
    good = sources.create({"password": "good"})
    operator_process.start()
    name = credentials.create(tenant_spec(tenant, good))
    credentials.wait_ready(name)
    replicas = {ns: cluster.core.read_namespaced_secret(name, ns) for ns in namespaces}

    reasons = {}
    for case, type_, data, reference, reason in SOURCE_CASES:
        secret = f"bad-{uuid.uuid4().hex[:8]}"
        if type_ is not None:
            sources.create(data, name=secret, type_=type_, namespace=elsewhere if reference == "elsewhere" else None)
        credentials.patch_spec(name, source_spec(reference, secret, elsewhere))

        condition = poll(
            lambda: current_condition(credentials, name, "SourceValid"), timeout=30, what=f"SourceValid for {case}"
        )
        assert (condition["status"], condition["reason"]) == ("False", reason), case
        reasons[case] = reason
        for namespace, before in replicas.items():
            now = cluster.core.read_namespaced_secret(name, namespace)
            assert now.metadata.resource_version == before.metadata.resource_version, case
            assert now.data == before.data, case
    print("source problems and their reasons:", json.dumps(reasons, indent=1))
