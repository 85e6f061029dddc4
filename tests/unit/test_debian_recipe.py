"""A Debian image's tag names its inputs: same inputs, same tag; any change, a new one."""

from __future__ import annotations

from dataclasses import replace

from regcred_dev.kind.debian import PYTHON_BASE_RECIPE, DebianImageRecipe

RECIPE = DebianImageRecipe(name="regcred-test-base", packages=("iptables", "conntrack"))


def test_tag_is_name_and_a_hash_of_the_inputs() -> None:
    name, digest = RECIPE.tag.split(":")
    assert name == "regcred-test-base"
    assert len(digest) == 16 and digest == RECIPE.fingerprint()


def test_package_order_does_not_matter() -> None:
    assert replace(RECIPE, packages=("conntrack", "iptables")).tag == RECIPE.tag


def test_every_input_changes_the_tag() -> None:
    variants = [
        replace(RECIPE, packages=("iptables",)),
        replace(RECIPE, suite="trixie"),
        replace(RECIPE, setup_script="true"),
        replace(RECIPE, changes=('CMD ["sh"]',)),
        replace(RECIPE, copy_host_ca_bundle=True),
    ]
    assert len({variant.tag for variant in variants} | {RECIPE.tag}) == len(variants) + 1


def test_python_base_has_what_a_python_slim_user_expects() -> None:
    assert {"python3", "python3-pip", "python3-venv", "ca-certificates"} <= set(
        PYTHON_BASE_RECIPE.packages
    )
    assert "EXTERNALLY-MANAGED" in PYTHON_BASE_RECIPE.setup_script
    assert PYTHON_BASE_RECIPE.copy_host_ca_bundle
