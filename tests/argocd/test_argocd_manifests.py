"""The Argo CD examples in deploy/argocd/: projects, applications, waves, ignore rules.

Argo CD's CRDs are not installed in the test cluster, so the objects are checked here:
against a minimal schema of the Application and AppProject fields they use (written
for these tests from Argo CD's API; unknown keys are refused, which catches misspelt
fields Argo CD would silently drop), and against each other and deploy/.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
import yaml

from regcred.models import API_GROUP, KIND
from regcred.planning.plan import ADDED_PULL_SECRETS_ANNOTATION

REPO = Path(__file__).resolve().parents[2]
ARGOCD = REPO / "deploy" / "argocd"
WAVE_ANNOTATION = "argocd.argoproj.io/sync-wave"
EXAMPLE_CREDENTIAL = yaml.safe_load((REPO / "examples" / "30-registrycredential.yaml").read_text())

Manifest = dict[str, Any]

# A minimal schema: a dict lists the keys allowed (a trailing "!" marks a required one),
# a one-element list describes every item, a type checks a leaf.
GROUP_KIND = {"group!": str, "kind!": str}
DESTINATION = {"server": str, "name": str, "namespace": str}
METADATA = {"name!": str, "namespace!": str, "annotations": {str: str}, "finalizers": [str]}
APP_PROJECT = {
    "apiVersion!": str,
    "kind!": str,
    "metadata!": METADATA,
    "spec!": {
        "description": str,
        "sourceRepos!": [str],
        "destinations!": [DESTINATION],
        "clusterResourceWhitelist": [GROUP_KIND],
        "namespaceResourceWhitelist": [GROUP_KIND],
        "namespaceResourceBlacklist": [GROUP_KIND],
    },
}
APPLICATION = {
    "apiVersion!": str,
    "kind!": str,
    "metadata!": METADATA,
    "spec!": {
        "project!": str,
        "source!": {
            "repoURL!": str,
            "targetRevision": str,
            "path": str,
            "kustomize": {"images": [str]},
        },
        "destination!": DESTINATION,
        "ignoreDifferences": [
            {
                "group": str,
                "kind!": str,
                "name": str,
                "namespace": str,
                "jsonPointers": [str],
                "jqPathExpressions": [str],
                "managedFieldsManagers": [str],
            }
        ],
        "syncPolicy": {
            "automated": {"prune": bool, "selfHeal": bool, "allowEmpty": bool},
            "syncOptions": [str],
        },
    },
}


def schema_errors(value: Any, schema: Any, path: str = "") -> list[str]:
    """Where `value` departs from `schema`, one message per departure."""
    if isinstance(schema, list):
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        return [
            error
            for i, item in enumerate(value)
            for error in schema_errors(item, schema[0], f"{path}[{i}]")
        ]
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return [f"{path}: expected a mapping"]
        if list(schema) == [str]:  # a free-form map such as annotations
            return [
                error
                for key, item in value.items()
                for error in schema_errors(item, str, f"{path}.{key}")
            ]
        fields = {key.rstrip("!"): sub for key, sub in schema.items()}
        errors = [f"{path}.{key}: unknown field" for key in value if key not in fields]
        errors += [
            f"{path}.{key[:-1]}: required"
            for key in schema
            if key.endswith("!") and key[:-1] not in value
        ]
        for key, item in value.items():
            if key in fields:
                errors += schema_errors(item, fields[key], f"{path}.{key}")
        return errors
    return (
        [] if isinstance(value, schema) else [f"{path}: expected {schema.__name__}, got {value!r}"]
    )


def load_all(folder: Path) -> list[Manifest]:
    """The objects of a folder's YAML files; its kustomization is not one."""
    return [
        doc
        for path in sorted(folder.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


ARGO_OBJECTS = load_all(ARGOCD) + load_all(ARGOCD / "apps")
PROJECTS = {obj["metadata"]["name"]: obj for obj in ARGO_OBJECTS if obj["kind"] == "AppProject"}
APPLICATIONS = {
    obj["metadata"]["name"]: obj for obj in ARGO_OBJECTS if obj["kind"] == "Application"
}
CHILD_APPLICATIONS = {obj["metadata"]["name"]: obj for obj in load_all(ARGOCD / "apps")}


def permits(group_kinds: list[Manifest], group: str, kind: str) -> bool:
    """Argo CD's match of a resource against a project's group/kind list (globs allowed)."""
    return any(
        fnmatchcase(group, entry["group"]) and fnmatchcase(kind, entry["kind"])
        for entry in group_kinds
    )


def kustomization_objects(folder: Path) -> list[Manifest]:
    """The objects a kustomization's `resources` list names, following nested folders
    (a component that only patches names none)."""
    objects = []
    for entry in yaml.safe_load((folder / "kustomization.yaml").read_text()).get("resources", []):
        target = (folder / entry).resolve()
        if target.is_dir():
            objects += kustomization_objects(target)
        else:
            objects += [doc for doc in yaml.safe_load_all(target.read_text()) if doc]
    return objects


def wave(application: Manifest) -> int:
    return int(application["metadata"].get("annotations", {}).get(WAVE_ANNOTATION, "0"))


def test_kinds_present() -> None:
    assert set(PROJECTS) == {"platform", "tenants"}
    assert {"platform-root", "regcred-operator", "registry-credentials", "team-frontend"} <= set(
        APPLICATIONS
    )
    assert set(CHILD_APPLICATIONS) == {"regcred-operator", "registry-credentials"}


@pytest.mark.parametrize(
    "obj", ARGO_OBJECTS, ids=lambda obj: f"{obj['kind']}/{obj['metadata']['name']}"
)
def test_matches_argo_cd_schema(obj: Manifest) -> None:
    schema = {"AppProject": APP_PROJECT, "Application": APPLICATION, "ConfigMap": None}[obj["kind"]]
    if schema is None:
        return  # the argocd-cm snippet has its own test
    assert obj["apiVersion"] == "argoproj.io/v1alpha1"
    assert obj["metadata"]["namespace"] == "argocd"
    assert schema_errors(obj, schema) == []


def test_registry_credentials_only_in_the_platform_project() -> None:
    allowed = [
        name
        for name, project in PROJECTS.items()
        if permits(project["spec"].get("clusterResourceWhitelist", []), API_GROUP, KIND)
    ]
    assert allowed == ["platform"]
    assert PROJECTS["tenants"]["spec"]["clusterResourceWhitelist"] == []


def test_platform_project_admits_everything_deploy_installs() -> None:
    platform = PROJECTS["platform"]["spec"]
    namespaces = {destination["namespace"] for destination in platform["destinations"]}
    for obj in kustomization_objects(REPO / "deploy"):
        group = obj["apiVersion"].rpartition("/")[0]
        namespace = obj["metadata"].get("namespace")
        if namespace is None:
            assert permits(platform["clusterResourceWhitelist"], group, obj["kind"]), obj["kind"]
        else:
            assert namespace in namespaces, (
                f"{obj['kind']} {obj['metadata']['name']} in {namespace}"
            )


@pytest.mark.parametrize(
    "component", sorted(path.name for path in (REPO / "deploy" / "components").iterdir())
)
def test_platform_project_admits_every_component(component: str) -> None:
    """docs/argocd.md tells platform users to add these; a kind outside the project fails the sync."""
    platform = PROJECTS["platform"]["spec"]
    for obj in kustomization_objects(REPO / "deploy" / "components" / component):
        if "namespace" not in obj["metadata"]:
            group = obj["apiVersion"].rpartition("/")[0]
            assert permits(platform["clusterResourceWhitelist"], group, obj["kind"]), obj["kind"]


def test_operator_application_sets_the_image_deploy_uses() -> None:
    """No release is published: the Application's image override must name deploy/'s image."""
    operator = CHILD_APPLICATIONS["regcred-operator"]["spec"]["source"]
    (override,) = operator["kustomize"]["images"]
    image_name, _, new_image = override.partition("=")
    deployment = next(
        obj for obj in kustomization_objects(REPO / "deploy") if obj["kind"] == "Deployment"
    )
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == image_name
    assert new_image.rpartition(":")[2], "the override must set a tag"
    # A branch, not the tag of a release that was never published.
    assert operator["targetRevision"] == "main"


def test_bootstrap_kustomization_applies_the_projects_and_the_root() -> None:
    bootstrap = kustomization_objects(ARGOCD)
    assert sorted((obj["kind"], obj["metadata"]["name"]) for obj in bootstrap) == [
        ("AppProject", "platform"),
        ("AppProject", "tenants"),
        ("Application", "platform-root"),
    ]


def test_every_application_fits_its_project() -> None:
    for application in APPLICATIONS.values():
        spec = application["spec"]
        project = PROJECTS[spec["project"]]["spec"]
        assert any(fnmatchcase(spec["source"]["repoURL"], repo) for repo in project["sourceRepos"])
        assert any(
            spec["destination"]["server"] == destination["server"]
            and fnmatchcase(spec["destination"]["namespace"], destination["namespace"])
            for destination in project["destinations"]
        )


def test_operator_and_crd_sync_before_credentials() -> None:
    operator, credentials = (
        CHILD_APPLICATIONS["regcred-operator"],
        CHILD_APPLICATIONS["registry-credentials"],
    )
    # Annotation values must be strings; a bare -1 would not even apply.
    assert operator["metadata"]["annotations"][WAVE_ANNOTATION] == "-1"
    assert credentials["metadata"]["annotations"][WAVE_ANNOTATION] == "1"
    assert wave(operator) < wave(credentials)
    assert operator["spec"]["source"]["path"] == "deploy"
    kinds = {obj["kind"] for obj in kustomization_objects(REPO / "deploy")}
    assert {"CustomResourceDefinition", "Deployment"} <= kinds
    # Deleting the operator's Application must not cascade to the CRD and every credential.
    assert "finalizers" not in operator["metadata"]


def test_service_account_ignore_rule_names_only_the_operators_writes() -> None:
    spec = APPLICATIONS["team-frontend"]["spec"]
    (rule,) = [rule for rule in spec["ignoreDifferences"] if rule["kind"] == "ServiceAccount"]
    secret_name = EXAMPLE_CREDENTIAL["spec"]["secretName"]
    assert rule["group"] == ""
    assert rule["jqPathExpressions"] == [f'.imagePullSecrets[]? | select(.name == "{secret_name}")']
    escaped = ADDED_PULL_SECRETS_ANNOTATION.replace("~", "~0").replace("/", "~1")  # RFC 6901
    assert rule["jsonPointers"] == [f"/metadata/annotations/{escaped}"]
    # imagePullSecrets is an atomic list: either of these would hide the whole list.
    assert "managedFieldsManagers" not in rule
    assert "/imagePullSecrets" not in rule["jsonPointers"]
    assert "RespectIgnoreDifferences=true" in spec["syncPolicy"]["syncOptions"]
