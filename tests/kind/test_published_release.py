"""A release installed as a user would install it: `make release` pushes the signed image
and chart to a private registry; the signatures verify with the public key; the chart
installs by reference (``helm install oci://...``) and the node pulls the image from
the same registry with a pull secret.

The tests share one release (module scope) and the kind tier's session cluster. The
file runs before test_real_node.py (file order), whose kustomize install would own the
cluster-wide objects this Helm release creates; the release is uninstalled here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from published_registry import PublishedRegistry
from test_real_node import Cluster, assert_operator_up, wait_until

import regcred
from gotools import go_tool
from regcred_dev.kind import KindCluster
from regcred_dev.release import CHART_NAME, IMAGE_NAME, cosign_verify_command
from regcred_dev.release.tools import COSIGN, CRANE, HELM
from registryserver import pinned_binaries

REPO = Path(__file__).resolve().parents[2]
VERSION = regcred.__version__
NAMESPACE = "regcred-released"
PULL_SECRET = "released-pull"
ROLLOUT_SECONDS = 300
COSIGN_PASSWORD = "release-test"


@dataclass(frozen=True)
class Release:
    """What `make release` made, and how to reach the registry it pushed to."""

    folder: Path
    record: dict
    registry: PublishedRegistry
    docker_config: Path
    public_key: Path

    @property
    def image(self) -> str:
        return self.record["image"]["reference"]

    @property
    def chart(self) -> str:
        return self.record["chart"]["reference"]

    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_CONFIG": str(self.docker_config),
                "SSL_CERT_FILE": str(self.registry.ca_file)}

    def run(self, command: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(command, env=self.env(), capture_output=True, text=True,
                                timeout=600, check=False)
        if check and result.returncode != 0:
            pytest.fail(f"{Path(command[0]).name} {command[1]} failed:\n{result.stderr[-3000:]}")
        return result


def generate_key_pair(folder: Path) -> tuple[Path, Path]:
    """A cosign key pair (encrypted with COSIGN_PASSWORD) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(go_tool(COSIGN)), "generate-key-pair"], cwd=folder, check=True,
                   env={**os.environ, "COSIGN_PASSWORD": COSIGN_PASSWORD},
                   capture_output=True, timeout=60)
    return folder / "cosign.key", folder / "cosign.pub"


@pytest.fixture(scope="module")
def release(kind_cluster: KindCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    """`make release VERSION=... REGISTRY=127.0.0.1:P/regcred` with a key made here."""
    for tool in (COSIGN, CRANE, HELM):  # built (or found) first: a build failure fails here
        go_tool(tool)
    work = tmp_path_factory.mktemp("release")
    key, public_key = generate_key_pair(work / "keys")
    registry = PublishedRegistry(
        f"{kind_cluster.name}-release-registry", kind_cluster.network,
        node=kind_cluster.node_container, cluster=kind_cluster.name, **pinned_binaries(),
    )
    registry.start()
    try:
        docker_config = registry.write_docker_config(work / "docker-config")
        folder = work / "dist"
        venv = Path(sys.prefix)
        result = subprocess.run(
            ["make", "-C", str(REPO), "release", f"VERSION={VERSION}",
             f"REGISTRY={registry.address}/regcred", f"REGISTRY_CA={registry.ca_file}",
             f"COSIGN_KEY={key}", "LOCAL_BASE=true", f"RELEASE_DIR={folder}",
             # The venv running these tests (make test's), so make installs nothing more.
             f"VENV={venv}"],
            env={**os.environ, "DOCKER_CONFIG": str(docker_config), "COSIGN_PASSWORD": COSIGN_PASSWORD},
            capture_output=True, text=True, timeout=1800, check=False,
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
        record = json.loads((folder / "release.json").read_text())
        yield Release(folder, record, registry, docker_config, public_key)
    finally:
        registry.stop()


def test_make_release_lists_every_artifact_with_its_checksum(release: Release):
    files = release.record["files"]
    assert {
        f"regcred_operator-{VERSION}-py3-none-any.whl",
        f"regcred_operator-{VERSION}.tar.gz",
        f"{CHART_NAME}-{VERSION}.tgz",
        f"{CHART_NAME}-{VERSION}.tgz.sigstore.json",
        f"{IMAGE_NAME}-{VERSION}.spdx.json",
        "cosign.pub",
    } <= set(files)
    checked = subprocess.run(["sha256sum", "--check", "--strict", "SHA256SUMS"], cwd=release.folder,
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert release.record["image"]["reference"].startswith(f"{release.registry.address}/regcred/{IMAGE_NAME}@sha256:")
    assert release.record["chart"]["reference"].startswith(f"{release.registry.address}/regcred/charts/{CHART_NAME}@sha256:")


def test_the_signatures_verify_with_the_public_key_and_not_with_another(release: Release, tmp_path: Path):
    for reference in (release.image, release.chart):
        release.run(cosign_verify_command(reference, release.public_key))
    _, other_key = generate_key_pair(tmp_path / "other")
    for reference in (release.image, release.chart):
        refused = release.run(cosign_verify_command(reference, other_key), check=False)
        assert refused.returncode != 0, reference
    cosign = str(go_tool(COSIGN))
    chart_file = release.folder / f"{CHART_NAME}-{VERSION}.tgz"
    release.run([cosign, "verify-blob", "--key", str(release.public_key), "--insecure-ignore-tlog=true",
                 "--bundle", f"{chart_file}.sigstore.json", str(chart_file)])


def test_the_image_carries_a_signed_sbom_that_describes_it(release: Release):
    cosign = str(go_tool(COSIGN))
    attested = release.run([cosign, "verify-attestation", "--key", str(release.public_key),
                            "--insecure-ignore-tlog=true", "--type", "spdxjson", release.image])
    assert attested.stdout.strip()
    sbom = json.loads((release.folder / f"{IMAGE_NAME}-{VERSION}.spdx.json").read_text())
    assert sbom["spdxVersion"].startswith("SPDX-")
    packages = {(package["name"], package.get("versionInfo")) for package in sbom["packages"]}
    # The operator's own distribution and a pinned dependency, as installed in the image.
    assert ("regcred-operator", VERSION) in packages
    assert ("kopf", "1.45.2") in packages


def test_the_image_and_chart_say_the_release_version(release: Release, helm_bin: Path):
    crane = str(go_tool(CRANE))
    image_tag = f"{release.registry.address}/regcred/{IMAGE_NAME}:{VERSION}"
    assert release.run([crane, "digest", image_tag]).stdout.strip() == release.record["image"]["digest"]
    labels = json.loads(release.run([crane, "config", image_tag]).stdout)["config"]["Labels"]
    assert labels["org.opencontainers.image.version"] == VERSION

    chart_url = f"oci://{release.registry.address}/regcred/charts/{CHART_NAME}"
    registry_flags = ["--version", VERSION, "--ca-file", str(release.registry.ca_file),
                      "--registry-config", str(release.docker_config / "config.json")]
    chart = yaml.safe_load(release.run([str(helm_bin), "show", "chart", chart_url, *registry_flags]).stdout)
    assert (chart["version"], chart["appVersion"]) == (VERSION, VERSION)
    values = yaml.safe_load(release.run([str(helm_bin), "show", "values", chart_url, *registry_flags]).stdout)
    # Installed as is, the chart runs the image released with it.
    assert values["image"]["repository"] == f"{release.registry.address}/regcred/{IMAGE_NAME}"


def test_helm_install_by_oci_reference_runs_the_image_the_node_pulled(
    release: Release, kind_cluster: KindCluster, helm_bin: Path
):
    # Verify first, as the install guide says: an unsigned or re-signed chart stops here.
    for reference in (release.chart, release.image):
        release.run(cosign_verify_command(reference, release.public_key))

    cluster = Cluster(kind_cluster)
    try:
        cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
        cluster.core.create_namespaced_secret(NAMESPACE, client.V1Secret(
            metadata=client.V1ObjectMeta(name=PULL_SECRET), type="kubernetes.io/dockerconfigjson",
            string_data={".dockerconfigjson": release.registry.docker_config_json()},
        ))
        helm = [str(helm_bin), "--kubeconfig", str(kind_cluster.kubeconfig)]
        installed = release.run(
            [*helm, "install", "regcred-operator",
             f"oci://{release.registry.address}/regcred/charts/{CHART_NAME}", "--version", VERSION,
             "--ca-file", str(release.registry.ca_file),
             "--registry-config", str(release.docker_config / "config.json"),
             "--namespace", NAMESPACE, "--set", f"imagePullSecrets[0].name={PULL_SECRET}",
             "--wait", f"--timeout={ROLLOUT_SECONDS}s"],
            check=False,
        )
        assert installed.returncode == 0, installed.stderr[-3000:]
        try:
            assert_operator_up(cluster, NAMESPACE)
            pods = cluster.operator_pods(NAMESPACE)
            digest = release.record["image"]["digest"]
            for pod in pods:
                (status,) = pod.status.container_statuses
                assert status.image_id.endswith(digest), (status.image, status.image_id)
                assert status.image == f"{release.registry.address}/regcred/{IMAGE_NAME}:{VERSION}"
                events = cluster.events_of(NAMESPACE, pod.metadata.name)
                assert [event for event in events if event.startswith("Pulled:")], events
        finally:
            release.run([*helm, "uninstall", "regcred-operator", "--namespace", NAMESPACE, "--wait"])
    finally:
        cluster.core.delete_namespace(NAMESPACE)
        wait_until(lambda: not _namespace_exists(cluster, NAMESPACE), 120, f"{NAMESPACE} gone")
        cluster.api_client.close()


def _namespace_exists(cluster: Cluster, name: str) -> bool:
    try:
        cluster.core.read_namespace(name)
    except client.ApiException as error:
        if error.status == 404:
            return False
        raise
    return True
