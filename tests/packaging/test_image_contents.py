"""The operator's image holds the product and nothing of the workshop, and runs without the
parts of the kubernetes client the Dockerfile leaves out (the operator serving a real API
server from this image: tests/e2e/test_image_as_deployed.py)."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from shipped import product_files, workshop_files

from regcred.cli import build_parser
from regcred_dev.kind.operator_image import buildkit_client

# Prints, as JSON, every file under site-packages (relative to it) and what importing
# each product module and the workshop's package gave: a product module that needs a
# left-out part of the kubernetes client fails to import here.
INVENTORY = """
import importlib, json, os, pkgutil, sysconfig
import regcred
site = sysconfig.get_paths()["purelib"]
files = [os.path.relpath(os.path.join(root, name), site).replace(os.sep, "/")
         for root, _, names in os.walk(site) for name in names]
modules = {}
for module in pkgutil.walk_packages(regcred.__path__, "regcred."):
    if module.name.endswith(".__main__"):
        continue  # importing it runs the command
    try:
        importlib.import_module(module.name)
        modules[module.name] = "ok"
    except Exception as error:
        modules[module.name] = repr(error)
try:
    import regcred_dev
    workshop = "importable"
except ModuleNotFoundError:
    workshop = "absent"
print(json.dumps({"files": files, "modules": modules, "workshop": workshop}))
"""


def run_in_image(image: str, *args: str, entrypoint: str | None = None) -> str:
    command = [buildkit_client(), "run", "--rm", "--network", "none"]
    command += ["--entrypoint", entrypoint] if entrypoint else []
    result = subprocess.run([*command, image, *args], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def inventory(operator_image: str) -> dict:
    return json.loads(run_in_image(operator_image, "-c", INVENTORY, entrypoint="python"))


def test_the_image_holds_no_workshop_file(inventory):
    assert workshop_files(inventory["files"]) == []
    assert inventory["workshop"] == "absent"


def test_the_image_holds_exactly_the_products_modules_and_each_imports(inventory):
    installed = {name for name in inventory["files"] if name.startswith("regcred/") and name.endswith(".py")}
    assert installed == product_files()
    assert {name: outcome for name, outcome in inventory["modules"].items() if outcome != "ok"} == {}


def test_the_image_leaves_out_the_kubernetes_clients_nothing_imports(inventory):
    left_out = ("kubernetes/aio/", "kubernetes/client/api/")
    assert [name for name in inventory["files"] if name.startswith(left_out)] == []
    # What the operator does use stays.
    assert {"kubernetes/client/api_client.py", "kubernetes/config/kube_config.py"} <= set(inventory["files"])


def subcommands(help_text: str) -> list[str]:
    """The COMMAND names an argparse --help lists (indented 4 spaces under positional arguments)."""
    section = help_text.split("positional arguments:", 1)[1].split("options:", 1)[0]
    return [match[1] for line in section.splitlines() if (match := re.match(r"    (\S+)", line))]


def test_regcred_help_in_the_image_offers_only_the_operator(operator_image):
    shown = subcommands(run_in_image(operator_image, "--help"))
    assert shown == ["run"]
    assert shown == subcommands(build_parser().format_help())


def test_the_kubectl_plugin_in_the_image_offers_its_subcommands(operator_image):
    shown = subcommands(run_in_image(operator_image, "--help", entrypoint="kubectl-regcred"))
    assert shown == ["plan", "status", "verify", "create", "uninstall"]
