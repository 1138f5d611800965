"""The semconv registry, its generator, and the generated module, docs and JSON Schema."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from spanhouse import semconv
from spanhouse.semconv import attributes

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "semconv" / "model"


def _load_generator():
    spec = importlib.util.spec_from_file_location("semconv_generate", ROOT / "semconv" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


generate = _load_generator()
FILES = generate.model_files(ROOT)
REGISTRY = generate.load_registry(ROOT)
UPSTREAM = generate.read_yaml(ROOT / "semconv" / "upstream.yaml")

# The shape of definition/2 (weaver schemas/semconv.definition-schema.v2.json).
TOP_LEVEL = {"file_format", "attributes", "attribute_groups", "events", "metrics", "spans", "entities",
             "imports"}
DEFINITION_KEYS = {"key", "type", "brief", "note", "stability", "deprecated", "annotations", "examples"}
REF_KEYS = {"ref", "brief", "note", "examples", "requirement_level", "stability", "deprecated", "annotations"}
GROUP_KEYS = {"id", "visibility", "brief", "note", "stability", "deprecated", "annotations", "attributes"}
EVENT_KEYS = {"name", "brief", "note", "stability", "deprecated", "annotations", "attributes",
              "entity_associations"}
MEMBER_KEYS = {"id", "value", "brief", "note", "stability", "deprecated", "annotations"}
STABILITY = {"stable", "development", "alpha", "beta", "release_candidate"}
PRIMITIVES = {"string", "int", "double", "boolean", "any", "string[]", "int[]", "double[]", "boolean[]"}
LEVELS = {"required", "recommended", "opt_in"}


def _all(kind: str):
    """(file name, item) for every item of a top-level section across the registry files."""
    return [(name, item) for name, doc in FILES.items() for item in doc.get(kind) or []]


def _refs():
    return [(name, ref) for name, group in _all("attribute_groups") for ref in group["attributes"]] + [
        (name, ref) for name, event in _all("events") for ref in event.get("attributes", [])
    ]


# Generated files are current


def test_generated_files_are_current():
    stale = [str(p.relative_to(ROOT)) for p, text in generate.render_all(ROOT).items()
             if not p.exists() or p.read_text(encoding="utf-8") != text]
    assert not stale, f"stale generated files {stale}; run `python semconv/generate.py`"


def test_check_mode_names_stale_files(tmp_path):
    shutil.copytree(ROOT / "semconv", tmp_path / "semconv")
    shutil.copytree(ROOT / "src" / "spanhouse" / "semconv", tmp_path / "src" / "spanhouse" / "semconv")
    script = [sys.executable, str(ROOT / "semconv" / "generate.py"), "--check", "--root", str(tmp_path)]
    assert subprocess.run(script, check=False, capture_output=True, text=True).returncode == 0

    (tmp_path / "src/spanhouse/semconv/attributes.py").write_text("# edited by hand\n")
    (tmp_path / "semconv/docs/gen_ai.md").unlink()
    result = subprocess.run(script, check=False, capture_output=True, text=True)
    assert result.returncode == 1
    assert "stale: src/spanhouse/semconv/attributes.py" in result.stderr
    assert "stale: semconv/docs/gen_ai.md" in result.stderr
    assert "semconv/docs/spanhouse.md" not in result.stderr


def test_generator_reports_a_dangling_reference(tmp_path):
    shutil.copytree(ROOT / "semconv", tmp_path / "semconv")
    extra = ("file_format: definition/2\n"
             "attribute_groups:\n  - {id: g, visibility: internal, attributes: [{ref: no.such}]}\n")
    (tmp_path / "semconv/model/extra.yaml").write_text(extra)
    with pytest.raises(generate.RegistryError, match="no.such is neither defined"):
        generate.load_registry(tmp_path)


# The registry is well-formed definition/2


def test_manifest_declares_the_genai_dependency():
    manifest = generate.read_yaml(MODEL / "manifest.yaml")
    assert manifest["file_format"] == "definition_manifest/2.0"
    version_url = re.compile(r"^https?://[^/]+/.+/\d+\.\d+\.\d+$")
    assert version_url.match(manifest["schema_url"])
    for dependency in manifest["dependencies"]:
        assert version_url.match(dependency["schema_url"]) and dependency.get("registry_path")
    assert any("semantic-conventions-genai" in d["registry_path"] for d in manifest["dependencies"])
    assert semconv.SPANHOUSE_SCHEMA_URL == manifest["schema_url"]


def test_files_use_definition_2_and_known_sections():
    for name, doc in FILES.items():
        assert doc["file_format"] == "definition/2", name
        assert set(doc) <= TOP_LEVEL, (name, set(doc) - TOP_LEVEL)


def test_attribute_definitions_have_required_fields():
    for name, d in _all("attributes"):
        assert set(d) <= DEFINITION_KEYS, (name, d["key"], set(d) - DEFINITION_KEYS)
        assert {"key", "type", "brief", "stability"} <= set(d), (name, d)
        assert d["stability"] in STABILITY
        kind = d["type"]
        if isinstance(kind, str):
            inner = kind.removeprefix("template[").removesuffix("]") if kind.startswith("template[") else kind
            assert inner in PRIMITIVES, (d["key"], kind)
            if inner in ("string", "string[]"):
                assert d.get("examples"), f"{d['key']}: string attributes need examples"


def test_enums_have_members():
    for _name, d in _all("attributes"):
        if isinstance(d["type"], dict):
            members = d["type"]["members"]
            assert members, d["key"]
            for m in members:
                assert set(m) <= MEMBER_KEYS and {"id", "value", "stability"} <= set(m), (d["key"], m)
            assert len({m["id"] for m in members}) == len({m["value"] for m in members}) == len(members)
    for key, spec in UPSTREAM["attributes"].items():
        if isinstance(spec, dict) and "members" in spec:
            values = [m if isinstance(m, str) else m["value"] for m in spec["members"]]
            assert values and len(set(values)) == len(values), key


def test_groups_and_references_are_well_formed():
    for name, group in _all("attribute_groups"):
        assert set(group) <= GROUP_KEYS, (name, group["id"])
        assert group["visibility"] == "public" and group["brief"] and group["stability"] in STABILITY
    local = {d["key"] for _, d in _all("attributes")}
    for name, ref in _refs():
        assert set(ref) <= REF_KEYS, (name, ref["ref"], set(ref) - REF_KEYS)
        level = ref.get("requirement_level", "recommended")
        if isinstance(level, dict):  # {conditionally_required | recommended | opt_in: condition}
            assert len(level) == 1 and set(level) <= {"conditionally_required", *LEVELS} - {"required"}, ref
        else:
            assert level in LEVELS, ref
        if ref["ref"] not in local:  # upstream: the reference carries spanhouse's own brief
            assert ref.get("brief"), f"{name}: reference to {ref['ref']} needs a brief"


def test_upstream_attributes_are_referenced_not_redefined():
    local = {d["key"]: d for _, d in _all("attributes")}
    assert not local.keys() & set(UPSTREAM["attributes"])
    # Outside its own namespace spanhouse defines only non-spec input names, always as deprecated.
    assert all(key.startswith("spanhouse.") or d.get("deprecated") for key, d in local.items())
    assert set(UPSTREAM["attributes"]) <= set(REGISTRY.attributes), "upstream.yaml lists unreferenced keys"


def test_deprecations_name_a_reason_and_a_current_replacement():
    items = [d for _, d in _all("attributes")] + [r for _, r in _refs()] + [e for _, e in _all("events")]
    deprecated = [item["deprecated"] for item in items if item.get("deprecated")]
    assert len(deprecated) >= 15
    for dep in deprecated:
        assert dep["reason"] in {"renamed", "obsoleted", "uncategorized"} and dep["note"], dep
        if dep["reason"] == "renamed":
            target = REGISTRY.attributes[dep["renamed_to"]]
            assert not target.deprecated


def test_no_duplicate_ids():
    keys = [d["key"] for _, d in _all("attributes")]
    group_refs = [ref["ref"] for _, g in _all("attribute_groups") for ref in g["attributes"]]
    group_ids = [g["id"] for _, g in _all("attribute_groups")]
    events = [e["name"] for _, e in _all("events")] + [n for d in FILES.values() for n in
                                                       (d.get("imports") or {}).get("events", [])]
    for ids in (keys, group_refs, group_ids, events):
        assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_registry_covers_the_canonical_names():
    expected = {
        "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.usage.input_tokens",
        "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_write.input_tokens",
        "gen_ai.usage.reasoning.output_tokens", "gen_ai.prompt.variable", "gen_ai.evaluation.score.value",
        "openai.api.type", "service.name", "deployment.environment.name", "user.hash", "exception.stacktrace",
        "spanhouse.cost.usd", "spanhouse.cost.source", "spanhouse.redaction.detections",
        "spanhouse.normalized_from", "spanhouse.attribute.truncated_keys",
        "gen_ai.system", "gen_ai.usage.prompt_tokens", "deployment.environment",
    }
    assert expected <= set(REGISTRY.attributes)
    assert {"gen_ai.evaluation.result", "gen_ai.choice", "gen_ai.content.prompt"} <= set(REGISTRY.events)


# The generated module


def test_contract_names():
    assert semconv.GEN_AI_REQUEST_MODEL == "gen_ai.request.model"
    assert semconv.SPANHOUSE_COST_USD == "spanhouse.cost.usd"
    assert semconv.DEPLOYMENT_ENVIRONMENT_NAME == "deployment.environment.name"
    assert semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS == "gen_ai.usage.cache_read.input_tokens"
    assert semconv.GEN_AI_PROMPT_VARIABLE == "gen_ai.prompt.variable"
    assert semconv.EVENT_GEN_AI_EVALUATION_RESULT == "gen_ai.evaluation.result"
    assert semconv.GenAiOperationNameValues.EXECUTE_TOOL == "execute_tool"
    assert semconv.GenAiProviderNameValues.AZURE_AI_OPENAI.value == "azure.ai.openai"
    assert semconv.GenAiProviderNameValues.X_AI.value == "x_ai"
    assert semconv.SpanhouseCostSourceValues.UNKNOWN_MODEL.value == "unknown_model"
    assert semconv.SpanhouseRedactionPolicyValues.METADATA_ONLY.value == "metadata_only"
    assert semconv.GenAiToolTypeValues.DATASTORE.value == "datastore"
    assert semconv.RENAMED[semconv.GEN_AI_SYSTEM] == semconv.GEN_AI_PROVIDER_NAME
    assert semconv.ATTRIBUTE_TYPES[semconv.GEN_AI_PROMPT_VARIABLE] == "template[string]"
    assert semconv.ATTRIBUTE_TYPES[semconv.GEN_AI_REQUEST_TEMPERATURE] == "double"


def test_constants_follow_the_naming_rule():
    overrides = {d["key"]: d["annotations"]["spanhouse"]["constant"] for _, d in _all("attributes")
                 if "constant" in (d.get("annotations") or {}).get("spanhouse", {})}
    assert set(overrides.values()) == {"GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS_NONSPEC",
                                       "GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS_NONSPEC"}
    constants = {name: value for name, value in vars(attributes).items()
                 if re.fullmatch(r"[A-Z][A-Z0-9_]*", name)}
    for name, value in constants.items():
        # `event.name` is an attribute whose constant also starts with EVENT_.
        if isinstance(value, str) and name.startswith("EVENT_") and value not in attributes.ATTRIBUTE_TYPES:
            assert name == "EVENT_" + value.replace(".", "_").upper()
        elif isinstance(value, str) and name != "SPANHOUSE_SCHEMA_URL":
            assert name == overrides.get(value, value.replace(".", "_").upper()), name
            assert value in attributes.ATTRIBUTE_TYPES
    assert set(attributes.ATTRIBUTE_TYPES) == set(REGISTRY.attributes)
    assert set(attributes.RENAMED) | set(attributes.RENAMED.values()) <= set(attributes.ATTRIBUTE_TYPES)


def test_enum_classes_match_the_registry():
    for key, attr in REGISTRY.attributes.items():
        if attr.members:
            cls = getattr(attributes, "".join(p.capitalize() for p in re.split(r"[._]", key)) + "Values")
            assert [m.value for m in cls] == [m.value for m in attr.members]
            assert all(m.name == re.sub(r"[^A-Za-z0-9]+", "_", m.value).upper() for m in cls)


def test_all_is_sorted_and_complete():
    names = [n for n in vars(attributes) if not n.startswith("_") and n not in {"Enum", "Final"}]
    public = sorted(names, key=lambda n: (not n.isupper(), n))  # ruff RUF022: constants, then classes
    assert attributes.__all__ == public
    assert semconv.__all__ == public
    assert all(hasattr(semconv, name) for name in semconv.__all__)


# The JSON Schema


def _validate(schema: dict, value, path: str = "$") -> list[str]:
    """The subset of JSON Schema 2020-12 genai-span.schema.json uses: type, items, properties,
    patternProperties, additionalProperties (annotations such as examples are ignored)."""
    types = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "array": list,
             "object": dict}
    kind = schema.get("type")
    is_bool_as_number = kind in ("integer", "number") and isinstance(value, bool)
    if kind and (not isinstance(value, types[kind]) or is_bool_as_number):
        return [f"{path}: expected {kind}, got {type(value).__name__}"]
    errors = []
    if kind == "array":
        for i, item in enumerate(value):
            errors += _validate(schema.get("items", {}), item, f"{path}[{i}]")
    if kind == "object":
        for key, item in value.items():
            matched = [s for p, s in schema.get("patternProperties", {}).items() if re.search(p, key)]
            if key in schema.get("properties", {}):
                matched.append(schema["properties"][key])
            if not matched and schema.get("additionalProperties", True) is False:
                errors.append(f"{path}.{key}: not allowed")
            for sub in matched:
                errors += _validate(sub, item, f"{path}.{key}")
    return errors


SCHEMA = generate.read_yaml(ROOT / "semconv" / "schema" / "genai-span.schema.json")  # JSON is YAML

SAMPLE_SPAN = {
    "service.name": "support-bot",
    "deployment.environment.name": "production",
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.request.temperature": 0.2,
    "gen_ai.request.max_tokens": 512,
    "gen_ai.request.stream": False,
    "gen_ai.response.finish_reasons": ["stop"],
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.cache_read.input_tokens": 1024,
    "gen_ai.usage.output_tokens": 350,
    "gen_ai.input.messages": '[{"role": "user", "parts": [{"type": "text", "content": "Hi"}]}]',
    "gen_ai.output.messages": [{"role": "assistant", "parts": [{"type": "text", "content": "Hello"}]}],
    "gen_ai.prompt.name": "support-triage",
    "gen_ai.prompt.version": "v12",
    "gen_ai.prompt.variable.customer_name": "Alice",
    "spanhouse.cost.usd": 0.00041,
    "spanhouse.cost.source": "computed",
    "spanhouse.redaction.policy": "redacted",
    "spanhouse.redaction.detections.email": 2,
    "spanhouse.redaction.masked_keys": ["gen_ai.input.messages"],
    "spanhouse.normalized_from": ["openinference"],
    "llm.vendor.specific": "kept as sent",
}


def test_schema_validates_a_normalized_span():
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["additionalProperties"] is True
    assert _validate(SCHEMA, SAMPLE_SPAN) == []


def test_schema_rejects_mistyped_values():
    broken = {**SAMPLE_SPAN, "gen_ai.usage.input_tokens": "1200", "spanhouse.redaction.detections.email": 1.5,
              "gen_ai.response.finish_reasons": "stop", "gen_ai.request.stream": 1}
    assert sorted(_validate(SCHEMA, broken)) == [
        "$.gen_ai.request.stream: expected boolean, got int",
        "$.gen_ai.response.finish_reasons: expected array, got str",
        "$.gen_ai.usage.input_tokens: expected integer, got str",
        "$.spanhouse.redaction.detections.email: expected integer, got float",
    ]


def test_schema_types_every_attribute():
    for key, attr in REGISTRY.attributes.items():
        if attr.type.startswith("template["):
            assert any(re.search(p, key + ".x") for p in SCHEMA["patternProperties"]), key
        else:
            assert key in SCHEMA["properties"], key
