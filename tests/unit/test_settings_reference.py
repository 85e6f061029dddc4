"""docs/settings.md is what hack/settings_reference.py makes of the parser and the variables.

A flag added to `regcred run` or a REGCRED_* variable added to regcred.config changes the
generated page; this fails until the committed page is regenerated, so the reference
cannot drift from what the operator accepts.
"""

from __future__ import annotations

from settingspage import SETTINGS_PAGE, settings_generator

from regcred.cli import LOG_LEVEL_VARIABLE
from regcred.config import VARIABLES


def test_the_page_is_generated_from_the_parser_and_the_variables() -> None:
    assert SETTINGS_PAGE.read_text() == settings_generator().render(), "run: python hack/settings_reference.py > docs/settings.md"


def test_every_flag_and_variable_is_on_the_page() -> None:
    page = SETTINGS_PAGE.read_text()
    generator = settings_generator()
    actions = generator.options(generator.run_parser())
    flags = [flag for action in actions for flag in action.option_strings if flag not in ("-h", "--help")]
    assert flags and [flag for flag in flags if f"`{flag}`" not in page] == []
    variables = [*VARIABLES, LOG_LEVEL_VARIABLE]
    assert [name for name in variables if f"`{name}`" not in page] == []
