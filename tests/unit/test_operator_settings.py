"""The operator's settings as a user gives them: flags, REGCRED_* variables, their order.

Two traps once lay here: naming one more namespace to skip made kube-system selectable,
and `--verbose` after `run` (where a Deployment's args put it) stopped the operator.
"""

from __future__ import annotations

import logging

import pytest

from regcred.cli import build_parser, log_level_from_args
from regcred.config import OperatorConfig, settings_from_env
from regcred.options import config_from_args
from regcred.planning.selection import DEFAULT_ALWAYS_EXCLUDED


def run_config(*flags: str) -> OperatorConfig:
    return config_from_args(build_parser().parse_args(["run", *flags]))


@pytest.fixture(autouse=True)
def no_operator_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REGCRED_EXCLUDED_NAMESPACES", "REGCRED_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("flags", "also_excluded"),
    [
        ([], set()),
        (["--exclude-namespace", "monitoring"], {"monitoring"}),
        (["--exclude-namespace", "monitoring", "--exclude-namespace", "kube-system"], {"monitoring"}),
    ],
)
def test_excluded_namespaces_add_to_the_built_in_ones(flags: list[str], also_excluded: set[str]) -> None:
    assert run_config(*flags).excluded_namespaces == DEFAULT_ALWAYS_EXCLUDED | also_excluded


@pytest.mark.parametrize("value", ["monitoring", "", "monitoring,kube-public"])
def test_the_variable_adds_to_the_built_in_ones_too(value: str) -> None:
    config = OperatorConfig(**settings_from_env({"REGCRED_EXCLUDED_NAMESPACES": value}))
    assert config.excluded_namespaces >= DEFAULT_ALWAYS_EXCLUDED
    assert "monitoring" in config.excluded_namespaces or value == ""


def test_help_says_the_flag_adds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--help"])
    assert "in addition to kube-system" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    "argv",
    [
        ["--verbose", "run"],
        ["run", "--verbose"],
        ["-v", "run", "--leader-elect"],
        ["run", "--leader-elect", "-v"],
        ["--log-level", "debug", "run"],
        ["run", "--log-level", "debug"],
    ],
)
def test_global_flags_work_before_and_after_run(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert args.command == "run"
    assert log_level_from_args(args, {}) == logging.DEBUG


def test_a_flag_before_run_is_not_reset_by_the_command() -> None:
    args = build_parser().parse_args(["--log-level", "error", "run"])
    assert log_level_from_args(args, {}) == logging.ERROR


@pytest.mark.parametrize(
    ("argv", "environ", "level"),
    [
        (["run"], {}, logging.INFO),
        (["run"], {"REGCRED_LOG_LEVEL": "warning"}, logging.WARNING),
        (["run"], {"REGCRED_LOG_LEVEL": "DEBUG"}, logging.DEBUG),
        (["run", "--log-level", "error"], {"REGCRED_LOG_LEVEL": "debug"}, logging.ERROR),
        (["run", "-v"], {"REGCRED_LOG_LEVEL": "warning"}, logging.DEBUG),
    ],
)
def test_log_level_flag_then_variable_then_info(argv: list[str], environ: dict[str, str], level: int) -> None:
    assert log_level_from_args(build_parser().parse_args(argv), environ) == level


def test_an_unknown_log_level_in_the_variable_is_refused() -> None:
    with pytest.raises(ValueError, match="REGCRED_LOG_LEVEL"):
        log_level_from_args(build_parser().parse_args(["run"]), {"REGCRED_LOG_LEVEL": "loud"})
