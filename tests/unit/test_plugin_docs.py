"""docs/plugin.md documents every option of every `kubectl regcred` subcommand."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from regcred.plugin import build_parser

PLUGIN_DOC = Path(__file__).resolve().parents[2] / "docs" / "plugin.md"


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    (commands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(commands.choices)


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_every_option_of_the_subcommand_is_documented(command: str):
    text = PLUGIN_DOC.read_text(encoding="utf-8")
    assert f"`{command}" in text, f"docs/plugin.md does not describe `{command}`"
    options = {
        option for action in _subcommands()[command]._actions for option in action.option_strings
        if option not in ("-h", "--help")
    }
    # An option counts as documented where the page shows it as code: `--flag` or `--flag VALUE`.
    missing = sorted(option for option in options if f"`{option}`" not in text and f"`{option} " not in text)
    assert not missing, f"docs/plugin.md lacks {command}'s {missing}"
