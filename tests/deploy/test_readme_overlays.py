"""The README's install blocks render what they promise, without a cluster: the overlays
they write build with the real kustomize onto deploy/, and the Helm command renders with
the image it sets. (The blocks run whole on the kind tier, tests/kind/test_readme_on_kind.py.)"""

from __future__ import annotations

import shlex
from pathlib import Path

from manifests import CHART, parse_documents, run_tool

from readme_quickstart import checkout_layout, files_written, quickstart_blocks

USER_IMAGE = "registry.example.com/team/regcred-operator:dev"


def written_overlays(folder: Path) -> Path:
    """The checkout's layout with the files both install blocks write."""
    checkout_layout(folder)
    blocks = quickstart_blocks()
    for name in ("kubectl-install", "multi-tenant-install"):
        for path, text in files_written(blocks[name]).items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_text(text)
    return folder


def operator_container(manifests: list[dict]) -> dict:
    deployment = next(
        m
        for m in manifests
        if m["kind"] == "Deployment" and m["metadata"]["name"] == "regcred-operator"
    )
    return deployment["spec"]["template"]["spec"]["containers"][0]


def test_the_install_overlay_runs_the_users_image(kustomize, tmp_path: Path):
    folder = written_overlays(tmp_path)
    manifests = kustomize(folder / "my-install")

    assert operator_container(manifests)["image"] == USER_IMAGE
    assert {m["kind"] for m in manifests} >= {"CustomResourceDefinition", "Namespace", "Deployment"}


def test_the_platform_overlay_adds_the_tenant_label_and_the_admins_group(kustomize, tmp_path: Path):
    folder = written_overlays(tmp_path)
    manifests = kustomize(folder / "my-platform")

    container = operator_container(manifests)
    assert container["image"] == USER_IMAGE
    assert any(arg.startswith("--tenant-label=") for arg in container["args"])
    policy = next(
        m
        for m in manifests
        if m["metadata"]["name"] == "regcred-tenant-boundary"
        and m["kind"] == "ValidatingAdmissionPolicy"
    )
    assert "'kubeadm:cluster-admins'" in policy["spec"]["matchConditions"][0]["expression"]


def test_the_helm_command_renders_the_users_image(helm_bin: Path):
    words = shlex.split(quickstart_blocks()["helm-install"].replace("\\\n", " "))
    assert words[:4] == ["helm", "install", "regcred-operator", "deploy/chart"]
    flags = words[4:]
    # `helm template` takes the same flags but --create-namespace, which only an install acts on.
    flags.remove("--create-namespace")
    manifests = parse_documents(
        run_tool([str(helm_bin), "template", "regcred-operator", str(CHART), *flags])
    )

    assert operator_container(manifests)["image"] == USER_IMAGE
    assert {m["metadata"].get("namespace") for m in manifests if m["kind"] == "Deployment"} == {
        "regcred-system"
    }
