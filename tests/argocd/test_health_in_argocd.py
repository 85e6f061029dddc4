"""The health checks of deploy/argocd/ inside Argo CD v3.6.1 (the pinned build).

- every case of each check's health_test.yaml (RegistryCredential,
  TenantRegistryCredential, and the Application check the app of apps needs) through
  Argo CD's own Lua engine (``argocd admin settings resource-overrides health``, reading the argocd-cm snippet
  users merge into theirs);
- a credential synced by the ``registry-credentials`` Application moving through the
  states Argo CD records for it, as the operator (``regcred run``) writes its status.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from argocd_build import ArgoCDInstall
from argocd_harness import health_status, resource_status, sync_status
from argocd_env import ARGOCD_DIR, PLATFORM_REPO_URL, REPO, ArgoEnv

CUSTOMIZATIONS = ARGOCD_DIR / "resource_customizations"
CHECK_DIRS = (
    CUSTOMIZATIONS / "regcred.dev" / "RegistryCredential",
    CUSTOMIZATIONS / "regcred.dev" / "TenantRegistryCredential",
    CUSTOMIZATIONS / "argoproj.io" / "Application",
)
CASES = [
    (check_dir, case)
    for check_dir in CHECK_DIRS
    for case in yaml.safe_load((check_dir / "health_test.yaml").read_text())["tests"]
]
ARGOCD_CM = ARGOCD_DIR / "argocd-cm-health.yaml"
EXAMPLES = REPO / "examples"
CREDENTIAL = "acme"


def argocd_health(install: ArgoCDInstall, object_file: Path) -> tuple[str, str]:
    """(status, message) Argo CD's Lua engine gives `object_file` with the project's argocd-cm."""
    result = subprocess.run(
        [
            str(install.command("argocd")),
            "admin",
            "settings",
            "resource-overrides",
            "health",
            str(object_file),
            "--argocd-cm-path",
            str(ARGOCD_CM),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # It prints "STATUS: <status>" and "MESSAGE: <message>".
    fields = dict(re.findall(r"^(STATUS|MESSAGE): ?(.*)$", result.stdout, re.MULTILINE))
    assert set(fields) == {"STATUS", "MESSAGE"}, result.stdout
    return fields["STATUS"], fields["MESSAGE"]


@pytest.mark.parametrize(
    ("check_dir", "case"),
    CASES,
    ids=[f"{check_dir.name}-{Path(case['inputPath']).stem}" for check_dir, case in CASES],
)
def test_health_case_in_argocd_lua_engine(
    argocd_install: ArgoCDInstall, check_dir: Path, case: dict[str, Any]
):
    expected = case["healthStatus"]
    assert argocd_health(argocd_install, check_dir / case["inputPath"]) == (
        expected["status"],
        expected["message"],
    )


def credential_health(app: dict[str, Any]) -> dict[str, Any] | None:
    resource = resource_status(app, "RegistryCredential", CREDENTIAL)
    return None if resource is None else resource.get("health")


def test_health_states_of_a_synced_credential(argo_env: ArgoEnv):
    env = argo_env
    env.install_crd()
    env.kubectl("apply", "-f", str(EXAMPLES / "00-operator-namespace.yaml"))
    env.kubectl("apply", "-f", str(EXAMPLES / "20-tenant-namespaces.yaml"))
    env.apply_projects()
    platform = env.git.repo(PLATFORM_REPO_URL)
    credential = yaml.safe_load((EXAMPLES / "30-registrycredential.yaml").read_text())
    platform.publish({"registry-credentials/acme.yaml": yaml.safe_dump(credential)}, "acme")
    env.apps.apply(env.git.manifest(ARGOCD_DIR / "apps" / "registry-credentials.yaml"))

    def credential_is(status: str, message: str | None = None) -> Callable[[dict[str, Any]], bool]:
        def check(app: dict[str, Any]) -> bool:
            health = credential_health(app) or {}
            return health.get("status") == status and (
                message is None or health.get("message") == message
            )

        return check

    # Synced, and no operator has written a status yet.
    app = env.apps.wait(
        "registry-credentials",
        credential_is("Progressing", "Waiting for the operator to report status"),
        "the credential Progressing before the operator runs",
    )
    assert sync_status(app) == "Synced"
    assert health_status(app) == "Progressing"

    # The operator runs, but the source Secret with the password does not exist.
    env.operator.start()
    app = env.apps.wait(
        "registry-credentials", credential_is("Degraded"), "the credential Degraded"
    )
    message = credential_health(app)["message"]  # type: ignore[index]
    assert message == (
        "sources are invalid; existing copies are kept as they were: "
        "registries[0].passwordSecretRef: Secret regcred-system/acme-robot not found"
    )
    assert health_status(app) == "Degraded"

    env.kubectl("apply", "-f", str(EXAMPLES / "10-source-secret.yaml"))
    app = env.apps.wait(
        "registry-credentials",
        credential_is("Healthy"),
        "the credential Healthy once its source exists",
    )
    assert health_status(app) == "Healthy"
    assert re.fullmatch(r"all \d+ matched namespaces synced", credential_health(app)["message"])

    # A spec change the operator has not seen yet: Progressing, naming the generations.
    env.operator.stop()
    credential["spec"]["excludeNamespaces"] = ["sandbox-*", "legacy-*"]
    platform.publish(
        {"registry-credentials/acme.yaml": yaml.safe_dump(credential)}, "exclude legacy"
    )
    env.apps.refresh("registry-credentials")
    app = env.apps.wait(
        "registry-credentials",
        credential_is(
            "Progressing", "Waiting for the operator to observe generation 2 (status is for 1)"
        ),
        "the credential Progressing after a spec change",
    )
    assert health_status(app) == "Progressing"

    env.operator.start()
    app = env.apps.wait(
        "registry-credentials", credential_is("Healthy"), "the credential Healthy again"
    )
    assert (sync_status(app), health_status(app)) == ("Synced", "Healthy")
