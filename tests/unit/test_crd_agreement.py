"""The CRD in crds/ and the pydantic models in regcred.models describe the same API.

The API server validates with the CRD, the operator with the models; if they drift,
an object one accepts the other refuses. The walk below compares the two schemas
keyword by keyword and names the path of every difference.

Differences that are not drift:
- `description`, `format`, `x-kubernetes-*` exist only in the CRD;
- pydantic spells "no unknown fields" as `additionalProperties: false`, the CRD gets
  the same effect from pruning;
- a map's keys: pydantic writes `patternProperties`/`propertyNames`, which structural
  schemas forbid, so the CRD checks the keys with a CEL rule that must carry the same
  pattern and length bound;
- an empty default (None, [], {}, 0) is the same as no default: omitted fields read
  as empty on both sides.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from regcred import models

CRD_PATH = Path(__file__).resolve().parents[2] / "crds" / "regcred.dev_registrycredentials.yaml"

COMPARED_KEYWORDS = (
    "type",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "maxProperties",
    "minimum",
    "maximum",
)
STRUCTURE_KEYWORDS = {"properties", "required", "items", "default"}
MODEL_ONLY_KEYWORDS = {
    "title",
    "description",
    "additionalProperties",
    "patternProperties",
    "propertyNames",
}
CRD_ONLY_KEYWORDS = {
    "description",
    "format",
    "additionalProperties",
    "x-kubernetes-validations",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
}

Schema = Mapping[str, Any]


@cache
def load_crd() -> dict[str, Any]:
    crd: dict[str, Any] = yaml.safe_load(CRD_PATH.read_text())
    return crd


def crd_version_schema() -> Schema:
    (version,) = [v for v in load_crd()["spec"]["versions"] if v["name"] == models.API_VERSION]
    schema: Schema = version["schema"]["openAPIV3Schema"]
    return schema


def model_schema(model: type[BaseModel]) -> tuple[Schema, Mapping[str, Schema]]:
    schema = model.model_json_schema(by_alias=True)
    defs = schema.pop("$defs", {})
    return schema, defs


def resolve(node: Schema, defs: Mapping[str, Schema]) -> Schema:
    """Inline `$ref`s and unwrap `anyOf [X, null]` (an optional field) into X."""
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        return resolve({**siblings, **target}, defs)
    if "anyOf" in node:
        branches = [branch for branch in node["anyOf"] if branch != {"type": "null"}]
        assert len(branches) == 1, f"only optional (X | None) unions are mirrored, got {node}"
        siblings = {key: value for key, value in node.items() if key != "anyOf"}
        return resolve({**siblings, **branches[0]}, defs)
    return node


def significant_default(value: Any) -> Any:
    return None if value in (None, [], {}, 0) else value


def model_defaults(node: Schema) -> dict[str, Any]:
    """Each property's default, by alias, read from the pydantic class (factories included)."""
    model = getattr(models, node["title"])
    return {
        field.alias or name: None
        if field.is_required()
        else significant_default(field.get_default(call_default_factory=True))
        for name, field in model.model_fields.items()
    }


def schema_differences(
    path: str, model_node: Schema, crd_node: Schema, defs: Mapping[str, Schema]
) -> Iterator[str]:
    """Every way the two schemas at `path` disagree, one line each."""
    model_node = resolve(model_node, defs)
    for keyword in COMPARED_KEYWORDS:
        if model_node.get(keyword) != crd_node.get(keyword):
            yield (
                f"{path}: {keyword} differs: model {model_node.get(keyword)!r}, "
                f"CRD {crd_node.get(keyword)!r}"
            )
    understood = set(COMPARED_KEYWORDS) | STRUCTURE_KEYWORDS
    for side, node, own in (
        ("model", model_node, MODEL_ONLY_KEYWORDS),
        ("CRD", crd_node, CRD_ONLY_KEYWORDS),
    ):
        for keyword in sorted(set(node) - understood - own):
            yield f"{path}: the {side} uses {keyword!r}, which this test does not compare yet"

    if "properties" in model_node or "properties" in crd_node:
        yield from object_differences(path, model_node, crd_node, defs)
    if "items" in model_node or "items" in crd_node:
        yield from schema_differences(
            f"{path}[]", model_node.get("items", {}), crd_node.get("items", {}), defs
        )
    if "patternProperties" in model_node or "additionalProperties" in crd_node:
        yield from map_differences(path, model_node, crd_node, defs)


def object_differences(
    path: str, model_node: Schema, crd_node: Schema, defs: Mapping[str, Schema]
) -> Iterator[str]:
    model_properties = model_node.get("properties", {})
    crd_properties = crd_node.get("properties", {})
    for name in sorted(set(model_properties) - set(crd_properties)):
        yield f"{path}.{name}: in the model, missing from the CRD"
    for name in sorted(set(crd_properties) - set(model_properties)):
        yield f"{path}.{name}: in the CRD, missing from the model"
    model_required = set(model_node.get("required", ()))
    crd_required = set(crd_node.get("required", ()))
    if model_required != crd_required:
        yield f"{path}: required differs: model {sorted(model_required)}, CRD {sorted(crd_required)}"
    defaults = model_defaults(model_node)
    for name in sorted(set(model_properties) & set(crd_properties)):
        crd_default = crd_properties[name].get("default")
        if defaults[name] != crd_default:
            yield f"{path}.{name}: default differs: model {defaults[name]!r}, CRD {crd_default!r}"
        yield from schema_differences(
            f"{path}.{name}", model_properties[name], crd_properties[name], defs
        )


def map_differences(
    path: str, model_node: Schema, crd_node: Schema, defs: Mapping[str, Schema]
) -> Iterator[str]:
    """A string-keyed map: values compare as schemas, keys against the CRD's CEL rule."""
    ((key_pattern, model_values),) = model_node.get("patternProperties", {"": {}}).items()
    yield from schema_differences(
        f"{path}{{value}}", model_values, crd_node.get("additionalProperties", {}), defs
    )
    key_limit = model_node.get("propertyNames", {}).get("maxLength")
    rules = " ".join(rule["rule"] for rule in crd_node.get("x-kubernetes-validations", ()))
    if f"r'{key_pattern}'" not in rules:
        yield f"{path}{{key}}: no CEL rule checks the keys against the model's pattern {key_pattern!r}"
    if f"size(key) <= {key_limit}" not in rules:
        yield f"{path}{{key}}: no CEL rule bounds the keys to the model's {key_limit} characters"


@pytest.mark.parametrize(
    ("field", "model"),
    [("spec", models.RegistryCredentialSpec), ("status", models.RegistryCredentialStatus)],
)
def test_crd_schema_mirrors_model(field: str, model: type[BaseModel]) -> None:
    schema, defs = model_schema(model)
    crd_node = crd_version_schema()["properties"][field]
    differences = list(schema_differences(field, schema, crd_node, defs))
    assert not differences, "CRD and models disagree:\n" + "\n".join(differences)


def test_crd_names_match_the_api_constants() -> None:
    crd = load_crd()
    assert crd["metadata"]["name"] == f"{models.PLURAL}.{models.API_GROUP}"
    assert crd["spec"]["group"] == models.API_GROUP
    assert crd["spec"]["names"]["kind"] == models.KIND
    assert crd["spec"]["names"]["plural"] == models.PLURAL
    assert [v["name"] for v in crd["spec"]["versions"]] == [models.API_VERSION]


def undocumented_fields(path: str, node: Schema) -> Iterator[str]:
    for name, child in node.get("properties", {}).items():
        if not child.get("description", "").strip():
            yield f"{path}.{name}"
        yield from undocumented_fields(f"{path}.{name}", child)
    if "items" in node:
        yield from undocumented_fields(f"{path}[]", node["items"])


def test_every_field_has_a_description_for_kubectl_explain() -> None:
    # The API server forbids a schema for metadata; kubectl explain shows ObjectMeta's own.
    missing = [
        path for path in undocumented_fields("", crd_version_schema()) if path != ".metadata"
    ]
    assert not missing, "fields without a description: " + ", ".join(missing)


def test_walk_reports_the_path_of_a_difference() -> None:
    """The comparison itself: a changed bound in a nested field is named by its path."""
    schema, defs = model_schema(models.RegistryCredentialSpec)
    crd_spec = yaml.safe_load(yaml.safe_dump(crd_version_schema()["properties"]["spec"]))
    registry = crd_spec["properties"]["registries"]["items"]["properties"]
    registry["passwordSecretRef"]["properties"]["key"]["maxLength"] = 63
    del registry["email"]
    assert list(schema_differences("spec", schema, crd_spec, defs)) == [
        "spec.registries[].email: in the model, missing from the CRD",
        "spec.registries[].passwordSecretRef.key: maxLength differs: model 253, CRD 63",
    ]


def _tenant_crd_generator():
    """hack/tenant_crd.py, loaded as a module (hack/ is a folder of scripts, not a package)."""
    import importlib.util

    path = CRD_PATH.parents[1] / "hack" / "tenant_crd.py"
    spec = importlib.util.spec_from_file_location("tenant_crd", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_tenant_crd_is_generated_from_the_cluster_crd():
    generated = _tenant_crd_generator().render()
    committed = (CRD_PATH.parent / "regcred.dev_tenantregistrycredentials.yaml").read_text()
    assert committed == generated, "run: python hack/tenant_crd.py > crds/regcred.dev_tenantregistrycredentials.yaml"


def _descriptions(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("description"), str):
            yield node["description"]
        for value in node.values():
            yield from _descriptions(value)
    elif isinstance(node, list):
        for value in node:
            yield from _descriptions(value)


def test_the_tenant_crd_never_sends_a_tenant_to_the_source_namespaces():
    """A tenant reads `kubectl explain`: it must say the Secret is in the credential's own
    namespace, never in the operator's source namespaces, which tenants cannot use."""
    tenant = yaml.safe_load((CRD_PATH.parent / "regcred.dev_tenantregistrycredentials.yaml").read_text())
    schema = tenant["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    password_ref = schema["properties"]["spec"]["properties"]["registries"]["items"]["properties"]["passwordSecretRef"]
    assert "own namespace" in password_ref["description"]
    assert not [text for text in _descriptions(schema["properties"]["spec"]) if "source namespace" in text]
