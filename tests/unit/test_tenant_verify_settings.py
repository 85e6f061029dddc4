"""The platform's switch for tenants' registry checks: flag, REGCRED_* variable, default off."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from regcred.cli import build_parser
from regcred.config import OperatorConfig, settings_from_env
from regcred.options import config_from_args


def run_config(*flags: str) -> OperatorConfig:
    return config_from_args(build_parser().parse_args(["run", *flags]))


def test_tenant_checks_are_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REGCRED_TENANT_VERIFY", "REGCRED_TENANT_VERIFY_ALLOW"):
        monkeypatch.delenv(name, raising=False)
    config = run_config()
    assert (config.tenant_verify, config.tenant_verify_allow) == (False, ())


def test_flags_turn_them_on_with_an_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGCRED_TENANT_VERIFY_ALLOW", "ignored.example")
    config = run_config("--tenant-verify", "--tenant-verify-allow", "harbor.internal", "--tenant-verify-allow", "10.0.0.0/8")
    assert config.tenant_verify is True
    assert config.tenant_verify_allow == ("harbor.internal", "10.0.0.0/8")  # flags win over the variable


@pytest.mark.parametrize(
    ("environ", "enabled", "allow"),
    [
        ({}, None, None),
        ({"REGCRED_TENANT_VERIFY": "false", "REGCRED_TENANT_VERIFY_ALLOW": ""}, False, None),  # deploy/'s defaults
        ({"REGCRED_TENANT_VERIFY": "true", "REGCRED_TENANT_VERIFY_ALLOW": "b.example, 10.0.0.0/8,"}, True, ("10.0.0.0/8", "b.example")),
    ],
)
def test_variables(environ: dict[str, str], enabled: bool | None, allow: tuple[str, ...] | None) -> None:
    settings = settings_from_env(environ)
    if enabled is not None:
        assert OperatorConfig(**settings).tenant_verify is enabled
    assert settings.get("tenant_verify_allow") == allow


def test_a_bad_allow_entry_is_refused_with_its_name() -> None:
    with pytest.raises(ValidationError, match="harbor.example:5000"):
        OperatorConfig(tenant_verify_allow=("harbor.example:5000",))


def test_previews_do_not_take_the_operators_egress_settings() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["plan", "-f", "x.yaml", "--tenant-verify"])
