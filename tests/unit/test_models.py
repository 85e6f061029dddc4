"""Which specs the models accept, and that every refusal names the field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from regcred.models import (
    MAX_GLOBS,
    MAX_REGISTRIES,
    MAX_SERVICE_ACCOUNT_PATTERNS,
    RegistryCredentialSpec,
)

REF = {"name": "acme-robot"}
SOURCE = {"dockerConfigSecretRefs": [{"name": "legacy"}]}


def with_registry(**fields: Any) -> dict[str, Any]:
    return {"registries": [{"server": "registry.acme.example", "passwordSecretRef": REF, **fields}]}


def with_selector(**selector: Any) -> dict[str, Any]:
    return {**SOURCE, "namespaceSelector": selector}


def expression(operator: str, *values: str) -> dict[str, Any]:
    return {"key": "env", "operator": operator, "values": list(values)}


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(with_registry(), id="one registry"),
        pytest.param(SOURCE, id="one docker config"),
        pytest.param(
            {
                "secretName": "acme-pull",
                **with_registry(username="robot-ci", email="ci@acme.example"),
                **SOURCE,
                "namespaceSelector": {
                    "matchLabels": {"tenant": "acme", "example.com/tier": "gold", "empty": ""},
                    "matchExpressions": [expression("In", "prod"), expression("DoesNotExist")],
                },
                "namespaces": ["team-*"],
                "excludeNamespaces": ["sandbox-?"],
                "serviceAccounts": ["default", "build.*"],
            },
            id="every field",
        ),
        pytest.param(with_registry(server="ghcr.io"), id="server host"),
        pytest.param(with_registry(server="localhost:5000"), id="server host:port"),
        pytest.param(
            with_registry(server="https://index.docker.io/v1/"), id="server with scheme and path"
        ),
        pytest.param(with_registry(server="r.example/team/images"), id="server with path"),
        pytest.param(with_registry(server="http://registry.lab:5000", plainHTTP=True), id="plain HTTP said explicitly"),
        pytest.param(
            with_registry(passwordSecretRef={**REF, "key": ".token_v2"}),
            id="key with dot and underscore",
        ),
        pytest.param({**SOURCE, "namespaces": []}, id="empty namespaces"),
        pytest.param({**SOURCE, "serviceAccounts": []}, id="empty serviceAccounts"),
        pytest.param({**SOURCE, "namespaces": ["*"], "serviceAccounts": ["*"]}, id="star globs"),
        pytest.param(with_selector(), id="empty selector"),
        pytest.param({**SOURCE, "namespaces": ["n"] * MAX_GLOBS}, id="namespaces at the limit"),
    ],
)
def test_valid_spec(spec: dict[str, Any]) -> None:
    RegistryCredentialSpec.model_validate(spec)


@pytest.mark.parametrize(
    ("spec", "field", "complaint"),
    [
        pytest.param(
            {}, "", "at least one of registries or dockerConfigSecretRefs", id="no source"
        ),
        pytest.param(
            {"registries": [], "dockerConfigSecretRefs": []},
            "",
            "at least one of registries or dockerConfigSecretRefs",
            id="both sources empty",
        ),
        pytest.param(
            with_registry(server=""),
            "registries.0.server",
            "at least 1 character",
            id="empty server",
        ),
        pytest.param(
            with_registry(server="ftp://r.example"),
            "registries.0.server",
            "pattern",
            id="server scheme",
        ),
        pytest.param(
            with_registry(server="r.example:5000000"),
            "registries.0.server",
            "pattern",
            id="server port",
        ),
        pytest.param(
            with_registry(server="-r.example"),
            "registries.0.server",
            "pattern",
            id="server leading dash",
        ),
        pytest.param(
            with_registry(server="r example"), "registries.0.server", "pattern", id="server space"
        ),
        pytest.param(
            with_registry(username=""),
            "registries.0.username",
            "at least 1 character",
            id="empty username",
        ),
        pytest.param(
            with_registry(email="robot"), "registries.0.email", "pattern", id="email without @"
        ),
        pytest.param(
            {"registries": [{"server": "r.example"}]},
            "registries.0.passwordSecretRef",
            "Field required",
            id="passwordSecretRef missing",
        ),
        pytest.param(
            with_registry(passwordSecretRef={"name": "Acme"}),
            "registries.0.passwordSecretRef.name",
            "pattern",
            id="secret name uppercase",
        ),
        pytest.param(
            with_registry(passwordSecretRef={**REF, "namespace": "regcred.system"}),
            "registries.0.passwordSecretRef.namespace",
            "pattern",
            id="namespace with a dot",
        ),
        pytest.param(
            with_registry(passwordSecretRef={**REF, "key": "pass word"}),
            "registries.0.passwordSecretRef.key",
            "pattern",
            id="key with a space",
        ),
        pytest.param(
            {**SOURCE, "secretName": "acme_pull"},
            "secretName",
            "pattern",
            id="secretName underscore",
        ),
        pytest.param(
            {**SOURCE, "secretName": "a" * 254},
            "secretName",
            "at most 253",
            id="secretName too long",
        ),
        pytest.param(
            {**SOURCE, "namespaces": ["Team-*"]}, "namespaces.0", "pattern", id="glob uppercase"
        ),
        pytest.param(
            {**SOURCE, "excludeNamespaces": ["team_a"]},
            "excludeNamespaces.0",
            "pattern",
            id="glob underscore",
        ),
        pytest.param(
            {**SOURCE, "namespaces": ["-team"]}, "namespaces.0", "pattern", id="glob leading dash"
        ),
        pytest.param(
            {**SOURCE, "namespaces": [""]}, "namespaces.0", "at least 1 character", id="glob empty"
        ),
        pytest.param(
            {**SOURCE, "serviceAccounts": ["build/er"]},
            "serviceAccounts.0",
            "pattern",
            id="SA slash",
        ),
        pytest.param(
            with_selector(matchExpressions=[expression("In")]),
            "namespaceSelector.matchExpressions.0",
            "operator In needs at least one value",
            id="In without values",
        ),
        pytest.param(
            with_selector(matchExpressions=[expression("NotIn")]),
            "namespaceSelector.matchExpressions.0",
            "operator NotIn needs at least one value",
            id="NotIn without values",
        ),
        pytest.param(
            with_selector(matchExpressions=[expression("Exists", "x")]),
            "namespaceSelector.matchExpressions.0",
            "operator Exists takes no values",
            id="Exists with values",
        ),
        pytest.param(
            with_selector(matchExpressions=[expression("Equals", "x")]),
            "namespaceSelector.matchExpressions.0.operator",
            "'In', 'NotIn', 'Exists' or 'DoesNotExist'",
            id="unknown operator",
        ),
        pytest.param(
            with_selector(matchLabels={"Bad Key": "x"}),
            "namespaceSelector.matchLabels.Bad Key.[key]",
            "pattern",
            id="label key with a space",
        ),
        pytest.param(
            with_selector(matchLabels={"tier": "gold!"}),
            "namespaceSelector.matchLabels.tier",
            "pattern",
            id="label value with !",
        ),
        pytest.param({**SOURCE, "registrys": []}, "registrys", "Extra inputs", id="unknown field"),
        pytest.param(
            with_registry(passwordSecretRef={**REF, "nmespace": "x"}),
            "registries.0.passwordSecretRef.nmespace",
            "Extra inputs",
            id="unknown nested field",
        ),
        pytest.param(
            {"registries": with_registry()["registries"] * (MAX_REGISTRIES + 1)},
            "registries",
            f"at most {MAX_REGISTRIES} items",
            id="too many registries",
        ),
        pytest.param(
            with_registry(server="http://registry.lab:5000"),
            "registries.0",
            "needs plainHTTP: true",
            id="plain HTTP without plainHTTP",
        ),
        pytest.param(
            with_registry(server="http://registry.lab:5000", plainHTTP=False),
            "registries.0",
            "needs plainHTTP: true",
            id="plain HTTP with plainHTTP false",
        ),
        pytest.param(
            with_registry(server="registry.lab:5000", plainHTTP=True),
            "registries.0",
            "plainHTTP: true needs a server starting with http://",
            id="plainHTTP without an http:// server",
        ),
        pytest.param(
            {**SOURCE, "excludeNamespaces": ["n"] * (MAX_GLOBS + 1)},
            "excludeNamespaces",
            f"at most {MAX_GLOBS} items",
            id="too many globs",
        ),
        pytest.param(
            {**SOURCE, "serviceAccounts": ["sa"] * (MAX_SERVICE_ACCOUNT_PATTERNS + 1)},
            "serviceAccounts",
            f"at most {MAX_SERVICE_ACCOUNT_PATTERNS} items",
            id="too many serviceAccounts",
        ),
    ],
)
def test_invalid_spec_names_the_field(spec: dict[str, Any], field: str, complaint: str) -> None:
    with pytest.raises(ValidationError) as raised:
        RegistryCredentialSpec.model_validate(spec)
    (error,) = raised.value.errors()
    assert ".".join(str(part) for part in error["loc"]) == field
    assert complaint in error["msg"]
    if field:
        # The rendered message, as status or a log line shows it, leads with the field.
        assert f"\n{field}\n" in str(raised.value)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(SOURCE, ["default"], id="default when omitted"),
        pytest.param({**SOURCE, "serviceAccounts": []}, [], id="empty kept"),
    ],
)
def test_service_accounts_default(spec: dict[str, Any], expected: list[str]) -> None:
    assert RegistryCredentialSpec.model_validate(spec).service_accounts == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(SOURCE, "acme", id="defaults to the credential's name"),
        pytest.param({**SOURCE, "secretName": "acme-pull"}, "acme-pull", id="secretName given"),
    ],
)
def test_effective_secret_name(spec: dict[str, Any], expected: str) -> None:
    assert RegistryCredentialSpec.model_validate(spec).effective_secret_name("acme") == expected


def test_password_key_defaults_to_password() -> None:
    spec = RegistryCredentialSpec.model_validate(with_registry())
    assert spec.registries[0].password_secret_ref.key == "password"
