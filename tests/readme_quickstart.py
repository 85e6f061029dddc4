"""The README's quick-start blocks, extracted and run as written.

Each runnable block in README.md follows an HTML comment `<!-- quickstart: NAME -->`.
The tests change only what a user changes (the image reference, the password
placeholder) and run the block with bash and the real kubectl, from a folder laid out
as the checkout's root (`deploy/` and `crds/`, where the blocks write `my-install/`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
QUICKSTART_BLOCK = re.compile(
    r"<!-- quickstart: (?P<name>[\w-]+) -->\n```sh\n(?P<body>.*?)\n```", re.DOTALL
)

# What the README asks a user to replace.
IMAGE_PLACEHOLDER = "registry.example.com/team/regcred-operator"
IMAGE_TAG_PLACEHOLDER = "newTag: dev"
PASSWORD_PLACEHOLDER = "'<password>'"
TEST_PASSWORD = "'quickstart-test-password'"

# The tenant of the multi-tenant quick start: the group its admin RoleBinding names.
TENANT_USER = "team-a-developer"
TENANT_GROUP = "team-a"


def delete_quickstart_credentials(kubectl: Callable[..., object]) -> None:
    """The credentials the quick starts create, deleted first and waited for: their cleanup
    needs the operator, which the caller removes afterwards."""
    kubectl("delete", "registrycredential", "acme", "--ignore-not-found", "--timeout=120s")
    kubectl(
        "-n", "team-a-ci", "delete", "tenantregistrycredential", "harbor", "--ignore-not-found", "--timeout=120s"
    )


def quickstart_blocks(text: str | None = None) -> dict[str, str]:
    """The marked blocks of the README, by name."""
    blocks: dict[str, str] = {}
    for match in QUICKSTART_BLOCK.finditer(README.read_text() if text is None else text):
        assert match.group("name") not in blocks, (
            f"two README blocks are marked {match.group('name')}"
        )
        blocks[match.group("name")] = match.group("body")
    return blocks


def as_user_writes_it(block: str, image: str | None = None) -> str:
    """The block with the user's own values in place of the README's placeholders."""
    text = block.replace(PASSWORD_PLACEHOLDER, TEST_PASSWORD)
    if image is not None:
        repository, _, tag = image.rpartition(":")
        assert IMAGE_PLACEHOLDER in text and IMAGE_TAG_PLACEHOLDER in text, (
            "the image placeholders moved"
        )
        text = text.replace(IMAGE_PLACEHOLDER, repository).replace(
            IMAGE_TAG_PLACEHOLDER, f"newTag: {tag}"
        )
    return text


HEREDOC_FILE = re.compile(
    r"^cat > (?P<path>\S+) <<'END'\n(?P<body>.*?)\nEND$", re.DOTALL | re.MULTILINE
)


def files_written(block: str) -> dict[str, str]:
    """The files a block writes with `cat > PATH <<'END'`, by path."""
    return {
        match.group("path"): match.group("body") + "\n" for match in HEREDOC_FILE.finditer(block)
    }


def checkout_layout(folder: Path) -> Path:
    """A folder holding what the blocks read of the checkout, for them to run in."""
    for name in ("deploy", "crds"):
        shutil.copytree(REPO / name, folder / name)
    return folder


def run_block(
    block: str, *, cwd: Path, kubectl_dir: Path, kubeconfig: Path, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run a block with bash, stopping at its first failing command; fail with its output."""
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "PATH": f"{kubectl_dir}{os.pathsep}{os.environ['PATH']}",
    }
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"the README block failed (exit {result.returncode}):\n{block}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


def impersonating_kubeconfig(admin_kubeconfig: Path, path: Path) -> Path:
    """The admin kubeconfig acting as the quick start's tenant: a user in the group
    `team-a` only, with just the rights the admin block gives that group."""
    config = yaml.safe_load(admin_kubeconfig.read_text())
    for user in config["users"]:
        user["user"]["as"] = TENANT_USER
        user["user"]["as-groups"] = [TENANT_GROUP, "system:authenticated"]
    path.write_text(yaml.safe_dump(config))
    return path
