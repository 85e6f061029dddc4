"""From spec and source Secrets to the replica's content, or to every problem found."""

from __future__ import annotations

import json
import traceback
from typing import Any

import pytest

from regcred.errors import (
    SourceEmptyPasswordError,
    SourceError,
    SourceInvalidConfigError,
    SourceKeyMissingError,
    SourceMissingError,
    SourceNotAllowedError,
    SourceNotTextError,
    SourceWrongTypeError,
)
from regcred.models import RegistryCredentialSpec, RegistryOverride
from regcred.planning.dockerconfig import content_hash, kubectl_auth_entry
from regcred.planning.sources import (
    DOCKER_CONFIG_TYPE,
    ResolvedContent,
    SourceSecret,
    resolve_content,
)

OPERATOR_NAMESPACE = "regcred-system"
SHARED_NAMESPACE = "shared-creds"
ALLOWED = frozenset({OPERATOR_NAMESPACE, SHARED_NAMESPACE})
# Every secret value below contains it; no problem message may.
CANARY = "hunter2-CANARY"


def opaque(name: str, namespace: str = OPERATOR_NAMESPACE, **data: bytes) -> SourceSecret:
    return SourceSecret(namespace, name, "Opaque", data)


def raw_docker_secret(name: str, raw: bytes, namespace: str = OPERATOR_NAMESPACE) -> SourceSecret:
    return SourceSecret(namespace, name, DOCKER_CONFIG_TYPE, {".dockerconfigjson": raw})


def docker_secret(
    name: str, auths: dict[str, Any] | None = None, namespace: str = OPERATOR_NAMESPACE
) -> SourceSecret:
    return raw_docker_secret(name, json.dumps({"auths": auths or {}}).encode(), namespace)


def registry(
    server: str = "r.example",
    username: str | None = "robot",
    email: str | None = None,
    **password_ref: str,
) -> dict[str, Any]:
    """A `registries` entry; keyword arguments go to its passwordSecretRef (name: robot)."""
    entry = {"server": server, "username": username, "email": email}
    return {
        **{key: value for key, value in entry.items() if value is not None},
        "passwordSecretRef": {"name": "robot", **password_ref},
    }


def resolve(spec: dict[str, Any], *secrets: SourceSecret) -> ResolvedContent:
    return resolve_content(
        RegistryCredentialSpec.model_validate(spec),
        {(secret.namespace, secret.name): secret for secret in secrets},
        default_namespace=OPERATOR_NAMESPACE,
        allowed_namespaces=ALLOWED,
    )


def auths_of(content: ResolvedContent) -> dict[str, Any]:
    assert content.docker_config is not None, [str(p) for p in content.problems]
    auths: dict[str, Any] = json.loads(content.docker_config)["auths"]
    return auths


PASSWORD = f"pw-{CANARY}".encode()


@pytest.mark.parametrize(
    ("spec", "secrets", "error", "reason", "message"),
    [
        pytest.param(
            {"registries": [registry()]},
            [],
            SourceMissingError,
            "SourceSecretNotFound",
            "registries[0].passwordSecretRef: Secret regcred-system/robot not found",
            id="password secret missing",
        ),
        pytest.param(
            {"registries": [registry(key="token")]},
            [opaque("robot", password=PASSWORD)],
            SourceKeyMissingError,
            "SourceKeyNotFound",
            "registries[0].passwordSecretRef (regcred-system/robot): key 'token' not found",
            id="password key missing",
        ),
        pytest.param(
            {"registries": [registry()]},
            [opaque("robot", password=b"\xff" + PASSWORD)],
            SourceNotTextError,
            "SourceValueNotText",
            "registries[0].passwordSecretRef (regcred-system/robot): key 'password' is not UTF-8 text",
            id="password not UTF-8",
        ),
        pytest.param(
            {"registries": [registry()]},
            [opaque("robot", password=b"")],
            SourceEmptyPasswordError,
            "SourceEmptyPassword",
            "registries[0].passwordSecretRef (regcred-system/robot): key 'password' is empty",
            id="password empty",
        ),
        pytest.param(
            {"registries": [registry(username=None)]},
            [opaque("robot", password=PASSWORD)],
            SourceKeyMissingError,
            "SourceKeyNotFound",
            "registries[0]: no username given and registries[0].passwordSecretRef "
            "(regcred-system/robot) has no 'username' key",
            id="username neither given nor in the Secret",
        ),
        pytest.param(
            {"registries": [registry(username=None)]},
            [opaque("robot", password=PASSWORD, username=b"\xfe" + CANARY.encode())],
            SourceNotTextError,
            "SourceValueNotText",
            "registries[0].passwordSecretRef (regcred-system/robot): key 'username' is not UTF-8 text",
            id="username in the Secret not UTF-8",
        ),
        pytest.param(
            {"registries": [registry(namespace="team-a")]},
            [opaque("robot", namespace="team-a", password=PASSWORD)],
            SourceNotAllowedError,
            "SourceNamespaceNotAllowed",
            "registries[0].passwordSecretRef: namespace 'team-a' is not an allowed source "
            "namespace (regcred-system, shared-creds)",
            id="password secret outside source namespaces",
        ),
        pytest.param(
            {"dockerConfigSecretRefs": [{"name": "legacy", "namespace": "team-a"}]},
            [docker_secret("legacy", namespace="team-a")],
            SourceNotAllowedError,
            "SourceNamespaceNotAllowed",
            "dockerConfigSecretRefs[0]: namespace 'team-a' is not an allowed source namespace "
            "(regcred-system, shared-creds)",
            id="docker config outside source namespaces",
        ),
        pytest.param(
            {"dockerConfigSecretRefs": [{"name": "legacy"}]},
            [],
            SourceMissingError,
            "SourceSecretNotFound",
            "dockerConfigSecretRefs[0]: Secret regcred-system/legacy not found",
            id="docker config secret missing",
        ),
        pytest.param(
            {"dockerConfigSecretRefs": [{"name": "legacy"}]},
            [SourceSecret(OPERATOR_NAMESPACE, "legacy", "Opaque", {".dockerconfigjson": PASSWORD})],
            SourceWrongTypeError,
            "SourceWrongType",
            "dockerConfigSecretRefs[0] (regcred-system/legacy): Secret type is 'Opaque', "
            "expected 'kubernetes.io/dockerconfigjson'",
            id="docker config of the wrong type",
        ),
        pytest.param(
            {"dockerConfigSecretRefs": [{"name": "legacy"}]},
            [SourceSecret(OPERATOR_NAMESPACE, "legacy", DOCKER_CONFIG_TYPE, {"other": PASSWORD})],
            SourceKeyMissingError,
            "SourceKeyNotFound",
            "dockerConfigSecretRefs[0] (regcred-system/legacy): key '.dockerconfigjson' not found",
            id="docker config key missing",
        ),
        pytest.param(
            {"dockerConfigSecretRefs": [{"name": "legacy"}]},
            [raw_docker_secret("legacy", b'{"auths": {"r": "' + PASSWORD)],
            SourceInvalidConfigError,
            "SourceInvalidDockerConfig",
            "dockerConfigSecretRefs[0] (regcred-system/legacy): .dockerconfigjson is not valid "
            "JSON (line 1, column 17)",
            id="docker config invalid JSON",
        ),
        pytest.param(
            {"dockerConfigSecretRefs": [{"name": "legacy"}]},
            [raw_docker_secret("legacy", b"\xff" + PASSWORD)],
            SourceInvalidConfigError,
            "SourceInvalidDockerConfig",
            "dockerConfigSecretRefs[0] (regcred-system/legacy): .dockerconfigjson is not UTF-8",
            id="docker config not UTF-8",
        ),
    ],
)
def test_each_source_problem(
    spec: dict[str, Any],
    secrets: list[SourceSecret],
    error: type[SourceError],
    reason: str,
    message: str,
) -> None:
    content = resolve(spec, *secrets)
    assert not content.valid and content.content_hash is None
    (problem,) = content.problems
    assert type(problem) is error
    assert problem.reason == reason
    assert str(problem) == message
    assert CANARY not in "".join(traceback.format_exception(problem))


def test_every_source_error_has_its_own_reason() -> None:
    reasons = [cls.reason for cls in SourceError.__subclasses__()]
    assert len(reasons) == len(set(reasons)) == 7


def test_all_problems_are_collected_in_spec_order() -> None:
    content = resolve(
        {
            "registries": [registry(), registry("s.example", key="absent")],
            "dockerConfigSecretRefs": [{"name": "gone"}, {"name": "legacy", "namespace": "team-a"}],
        },
        opaque("robot", password=b""),
    )
    assert [type(problem) for problem in content.problems] == [
        SourceMissingError,
        SourceNotAllowedError,
        SourceEmptyPasswordError,
        SourceKeyMissingError,
    ]


@pytest.mark.parametrize(
    ("registry_fields", "secret_data", "expected_entry"),
    [
        pytest.param(
            registry(username="robot", email="ci@acme.example"),
            {"password": b"s3cret"},
            kubectl_auth_entry("robot", "s3cret", "ci@acme.example"),
            id="username and email from the spec",
        ),
        pytest.param(
            registry(username=None),
            {"password": b"s3cret", "username": b"from-secret"},
            kubectl_auth_entry("from-secret", "s3cret", None),
            id="username from the Secret's username key",
        ),
        pytest.param(
            registry(username="spec-user"),
            {"password": b"s3cret", "username": b"from-secret"},
            kubectl_auth_entry("spec-user", "s3cret", None),
            id="spec username wins over the Secret's",
        ),
        pytest.param(
            registry(key="token"),
            {"token": "pässword".encode()},
            kubectl_auth_entry("robot", "pässword", None),
            id="custom key, UTF-8 password",
        ),
        pytest.param(
            registry(namespace=SHARED_NAMESPACE),
            {"password": b"s3cret"},
            kubectl_auth_entry("robot", "s3cret", None),
            id="allowed namespace other than the operator's",
        ),
    ],
)
def test_generated_entry(
    registry_fields: dict[str, Any], secret_data: dict[str, bytes], expected_entry: dict[str, str]
) -> None:
    namespace = registry_fields["passwordSecretRef"].get("namespace", OPERATOR_NAMESPACE)
    content = resolve({"registries": [registry_fields]}, opaque("robot", namespace, **secret_data))
    assert auths_of(content) == {"r.example": expected_entry}
    assert content.content_hash == content_hash(content.docker_config or b"")
    assert content.overrides == () and content.problems == ()


def test_precedence_registries_over_docker_configs_and_later_over_earlier() -> None:
    content = resolve(
        {
            "dockerConfigSecretRefs": [{"name": "old"}, {"name": "new"}],
            "registries": [
                registry("shared.example"),
                registry("both.example", username="first"),
                registry("both.example", username="second"),
            ],
        },
        docker_secret("old", {"only-old.example": {"auth": "o"}, "docker.example": {"auth": "o"}}),
        docker_secret("new", {"docker.example": {"auth": "n"}, "shared.example": {"auth": "n"}}),
        opaque("robot", password=b"pw"),
    )
    auths = auths_of(content)
    assert auths["only-old.example"] == {"auth": "o"}
    assert auths["docker.example"] == {"auth": "n"}
    assert auths["shared.example"] == kubectl_auth_entry("robot", "pw", None)
    assert auths["both.example"]["username"] == "second"
    old, new = (
        "dockerConfigSecretRefs[0] (regcred-system/old)",
        "dockerConfigSecretRefs[1] (regcred-system/new)",
    )
    assert content.overrides == (
        RegistryOverride(server="both.example", used="registries[2]", ignored=["registries[1]"]),
        RegistryOverride(server="docker.example", used=new, ignored=[old]),
        RegistryOverride(server="shared.example", used="registries[0]", ignored=[new]),
    )
