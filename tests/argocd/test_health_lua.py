"""The Argo CD health checks in deploy/argocd/ (RegistryCredential, TenantRegistryCredential,
Application), in Lua.

Each case of each check's health_test.yaml (Argo CD's own test layout) runs health.lua the way Argo
CD does: Lua 5.1 (Argo CD embeds gopher-lua, a 5.1 implementation) with only the base
and table libraries, the object as the global `obj`, and the script's returned table
read for `status` and `message`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

REPO = Path(__file__).resolve().parents[2]
ARGOCD = REPO / "deploy" / "argocd"
CUSTOMIZATIONS = ARGOCD / "resource_customizations"
# Each check in Argo CD's layout (GROUP/KIND/health.lua) and its argocd-cm key.
CHECK_DIRS = {
    "resource.customizations.health.regcred.dev_RegistryCredential": CUSTOMIZATIONS
    / "regcred.dev"
    / "RegistryCredential",
    "resource.customizations.health.regcred.dev_TenantRegistryCredential": CUSTOMIZATIONS
    / "regcred.dev"
    / "TenantRegistryCredential",
    "resource.customizations.health.argoproj.io_Application": CUSTOMIZATIONS
    / "argoproj.io"
    / "Application",
}
ARGOCD_CM = ARGOCD / "argocd-cm-health.yaml"
CASES = [
    (check_dir, case)
    for check_dir in CHECK_DIRS.values()
    for case in yaml.safe_load((check_dir / "health_test.yaml").read_text())["tests"]
]
# What Argo CD accepts from a health script; anything else becomes Unknown.
HEALTH_CODES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}
# Standard libraries Argo CD does not open for health scripts.
UNAVAILABLE_LIBRARIES = ("string", "math", "io", "os", "debug", "coroutine")


def run_health_check(script: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Run `script` with `obj` as Argo CD would; return the table it returns as a dict."""
    lua = lua51.LuaRuntime(register_eval=False, register_builtins=False)
    # Without the string library there is no string metatable either, so `s:sub()` fails there too.
    lua.execute('debug.setmetatable("", nil)')
    for library in UNAVAILABLE_LIBRARIES:
        lua.globals()[library] = None
    lua.globals().obj = lua.table_from(obj, recursive=True)
    returned = lua.execute(script)
    assert lua51.lua_type(returned) == "table", f"the script returned {returned!r}, not a table"
    return dict(returned.items())


def load_object(check_dir: Path, relative_path: str) -> dict[str, Any]:
    """A testdata object as Argo CD sees it: JSON, so YAML timestamps arrive as strings."""
    document = yaml.safe_load((check_dir / relative_path).read_text())
    return json.loads(json.dumps(document, default=str))  # type: ignore[no-any-return]


def case_id(check_dir: Path, case: dict[str, Any]) -> str:
    return f"{check_dir.name}-{Path(case['inputPath']).stem}"


@pytest.mark.parametrize(("check_dir", "case"), CASES, ids=[case_id(*item) for item in CASES])
def test_health_check_case(check_dir: Path, case: dict[str, Any]) -> None:
    script = (check_dir / "health.lua").read_text()
    health = run_health_check(script, load_object(check_dir, case["inputPath"]))
    assert health["status"] in HEALTH_CODES
    assert health == case["healthStatus"]


@pytest.mark.parametrize("check_dir", CHECK_DIRS.values(), ids=lambda path: path.name)
def test_every_testdata_object_has_a_case_and_each_outcome_is_covered(check_dir: Path) -> None:
    cases = [case for directory, case in CASES if directory == check_dir]
    listed = sorted(case["inputPath"] for case in cases)
    on_disk = sorted(f"testdata/{path.name}" for path in (check_dir / "testdata").glob("*.yaml"))
    assert listed == on_disk
    assert {case["healthStatus"]["status"] for case in cases} == {
        "Healthy",
        "Progressing",
        "Degraded",
    }


def test_sandbox_matches_argo_cd() -> None:
    """The emulation is strict: a script using string.* fails here as it would in Argo CD."""
    with pytest.raises(lua51.LuaError):
        run_health_check('return { status = string.upper("healthy") }', {})
    with pytest.raises(lua51.LuaError):
        run_health_check('return { status = ("Healthy"):sub(1) }', {})


def test_argocd_cm_snippet_embeds_the_scripts_verbatim() -> None:
    config_map = yaml.safe_load(ARGOCD_CM.read_text())
    assert (config_map["kind"], config_map["metadata"]["name"]) == ("ConfigMap", "argocd-cm")
    assert config_map["data"] == {
        key: (check_dir / "health.lua").read_text() for key, check_dir in CHECK_DIRS.items()
    }


def test_tenant_check_is_the_cluster_check() -> None:
    """Both kinds write the same conditions; Argo CD needs a script per kind, kept as twins."""

    def after_title(check: str) -> str:
        # Each script opens with its own title; the rest must be the same.
        script = (CUSTOMIZATIONS / "regcred.dev" / check / "health.lua").read_text()
        return script[script.index("-- Argo CD sets the global") :]

    assert after_title("TenantRegistryCredential") == after_title("RegistryCredential")
