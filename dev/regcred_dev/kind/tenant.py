"""The tenants' private image's program: a static C executable that needs no base image.

Built from ``tenant_app.c`` (package data) with the host's gcc; pushed with
`regcred_dev.kind.registry.RegistryServer.push_program`, it runs on a kind node as is.
"""

from __future__ import annotations

import shutil
import subprocess
from importlib import resources
from pathlib import Path

from regcred_dev.controlplane.build import BuildError

__all__ = ["TENANT_APP_SOURCE", "build_tenant_program"]

TENANT_APP_SOURCE = "tenant_app.c"
COMPILE_TIMEOUT_SECONDS = 120


def build_tenant_program(output: Path) -> Path:
    """Compile the tenant program statically into `output`; return `output`."""
    compiler = shutil.which("gcc")
    if compiler is None:
        raise BuildError("the tenant program needs gcc (and a static libc, e.g. Debian's libc6-dev)")
    output.parent.mkdir(parents=True, exist_ok=True)
    source = resources.files(__package__).joinpath(TENANT_APP_SOURCE)
    with resources.as_file(source) as source_path:
        result = subprocess.run(
            [compiler, "-static", "-Os", "-o", str(output), str(source_path)],
            capture_output=True, text=True, timeout=COMPILE_TIMEOUT_SECONDS, check=False,
        )
    if result.returncode != 0:
        raise BuildError(f"gcc could not build the tenant program:\n{result.stderr.strip()}")
    return output
