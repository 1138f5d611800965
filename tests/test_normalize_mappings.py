"""The mapping files as data: they load, they only write registry names, errors name their path,
and the processor's configuration reports bad settings before anything starts."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import pytest
from normalize_support import normalize

from spanhouse import semconv as sc
from spanhouse.component import Kind, default_registry
from spanhouse.config import parse_config
from spanhouse.errors import ConfigError
from spanhouse.normalize import MappingError, load_mappings
from spanhouse.normalize.loader import is_attribute, parse_mappings, shipped_files

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = {
    "otel_genai",
    "openinference",
    "traceloop",
    "openlit",
    "vercel_ai",
    "logfire",
    "langfuse",
    "mlflow",
}


def test_every_convention_has_a_file_and_they_load():
    mappings = load_mappings()
    assert set(mappings.names()) == SHIPPED
    assert [s.precedence for s in mappings.sources] == sorted(s.precedence for s in mappings.sources)
    known = {v.value for v in sc.SpanhouseNormalizedFromValues}
    for src in mappings.sources:
        assert src.source in known
        for rule in src.rules:
            assert rule.source in known


def test_the_installed_package_carries_the_same_files():
    installed = {
        p.name for p in importlib.resources.files("spanhouse.mappings").iterdir() if p.name.endswith(".yaml")
    }
    on_disk = {p.name for p in (ROOT / "semconv" / "mappings").glob("*.yaml")}
    assert installed == on_disk and "values.yaml" in installed


def test_all_targets_are_registry_attributes():
    for src in load_mappings().sources:
        for rule in src.rules:
            assert rule.to == sc.EVENT_GEN_AI_EVALUATION_RESULT or is_attribute(rule.to), (src.name, rule.key)
        for fam in src.families:
            assert fam.to == sc.EVENT_GEN_AI_EVALUATION_RESULT or is_attribute(fam.to)


def shipped_plus(name: str, text: str):
    return parse_mappings(shipped_files() + [(name, text)])


def test_errors_name_the_file_and_path_and_are_all_reported():
    bad = """
source: acme
precedence: 5
operation:
  - from: acme.kind
    values: {LLM: chatting}
attributes:
  acme.model: gen_ai.request.modle
  acme.tokens: {to: gen_ai.usage.input_tokens, only: [model_calls], colour: blue}
  acme.prov: {to: gen_ai.provider.name, values: no_such_map}
"""
    with pytest.raises(MappingError) as err:
        shipped_plus("acme.yaml", bad)
    problems = "\n".join(err.value.problems)
    assert "acme.yaml::operation[0]::values::LLM: 'chatting' is not a gen_ai.operation.name value" in problems
    assert "acme.yaml::attributes::acme.model::to: 'gen_ai.request.modle' is not an attribute" in problems
    assert "acme.yaml::attributes::acme.tokens::colour: unknown key" in problems
    assert (
        "acme.yaml::attributes::acme.tokens::only[0]: 'model_calls' is neither an operation nor a group"
        in problems
    )
    assert "acme.yaml::attributes::acme.prov::values: unknown value map 'no_such_map'" in problems


def test_int_fixes_name_int_attributes_only():
    bad = """
source: acme
precedence: 5
fix:
  gen_ai.request.model: {format: int}
  acme.*: {format: int}
  gen_ai.usage.*: {format: chat}
"""
    with pytest.raises(MappingError) as err:
        shipped_plus("acme.yaml", bad)
    problems = "\n".join(err.value.problems)
    assert "acme.yaml::fix::gen_ai.request.model: 'gen_ai.request.model' is not a current int attribute" in problems
    assert "acme.yaml::fix::acme.*: no int attribute of the registry starts with 'acme.'" in problems
    assert "acme.yaml::fix::gen_ai.usage.*: a prefix (`*`) is only supported with format: int" in problems


def test_sum_rules_add_two_or_more_attributes_into_a_number():
    bad = """
source: acme
precedence: 5
sum:
  gen_ai.request.model: {from: [acme.a, acme.b]}
  spanhouse.cost.cache_usd: {from: [acme.a]}
"""
    with pytest.raises(MappingError) as err:
        shipped_plus("acme.yaml", bad)
    problems = "\n".join(err.value.problems)
    assert "acme.yaml::sum::gen_ai.request.model: 'gen_ai.request.model' is not a number" in problems
    assert "acme.yaml::sum::spanhouse.cost.cache_usd::from: expected two or more attribute names" in problems


def test_not_yaml_is_reported():
    with pytest.raises(MappingError, match=r"broken.yaml: not valid YAML"):
        shipped_plus("broken.yaml", "source: [unclosed")


def test_extra_mapping_file_adds_a_convention(tmp_path):
    extra = tmp_path / "acme.yaml"
    extra.write_text(
        "source: acme\nprecedence: 90\ndetect: [acme.kind]\n"
        "operation:\n  - from: acme.kind\n    values: {llm: chat}\n"
        "attributes:\n  acme.model: gen_ai.request.model\n"
    )
    out = normalize({"acme.kind": "llm", "acme.model": "m-1"}, extra_mappings=[str(extra)])
    assert out[sc.GEN_AI_OPERATION_NAME] == "chat" and out[sc.GEN_AI_REQUEST_MODEL] == "m-1"
    assert out[sc.SPANHOUSE_NORMALIZED_FROM] == ["acme"]


def test_conventions_setting_limits_the_mappings():
    attrs = {"openinference.span.kind": "LLM", "llm.model_name": "m", "gen_ai.system": "xai"}
    out = normalize(dict(attrs), conventions=["otel_genai"])
    assert sc.GEN_AI_PROVIDER_NAME in out and sc.GEN_AI_REQUEST_MODEL not in out


def config(processor_settings: dict) -> dict:
    return {
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": "127.0.0.1:0"}}}},
        "processors": {"genai_normalize": processor_settings},
        "exporters": {"debug": {}},
        "service": {
            "pipelines": {
                "traces": {"receivers": ["otlp"], "processors": ["genai_normalize"], "exporters": ["debug"]}
            }
        },
    }


def test_config_problems_are_reported_with_their_path(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("source: bad\nprecedence: 1\nattributes:\n  x.y: not.an.attribute\n")
    with pytest.raises(ConfigError) as err:
        parse_config(
            config(
                {
                    "conventions": ["openinference", "phoenix"],
                    "extra_mappings": [str(bad)],
                    "drop_original": "yes",
                }
            )
        )
    problems = err.value.problems
    assert "processors::genai_normalize::drop_original: expected true or false, got 'yes'" in problems
    assert any(
        p.startswith("processors::genai_normalize::extra_mappings: bad.yaml::attributes::x.y::to:")
        for p in problems
    ), problems
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError) as err:
        parse_config(config({"conventions": ["phoenix"], "extra_mappings": [str(missing)]}))
    assert any("cannot read the mapping file" in p for p in err.value.problems)
    with pytest.raises(ConfigError) as err:
        parse_config(config({"conventions": ["phoenix"]}))
    assert err.value.problems == [
        "processors::genai_normalize::conventions[0]: unknown convention 'phoenix'; known: "
        + ", ".join(load_mappings().names())
    ]


def test_default_config_is_valid_and_the_factory_is_registered():
    parsed = parse_config(config({}))
    assert parsed is not None
    factory = default_registry().get(Kind.PROCESSOR, "genai_normalize")
    assert factory is not None and factory.signals == frozenset({"traces"})


def test_default_pipeline_runs_normalize_after_memory_limiter_and_before_cost():
    import yaml

    cfg = yaml.safe_load((ROOT / "otel-collector-config.yaml").read_text())
    procs = cfg["service"]["pipelines"]["traces"]["processors"]
    assert "genai_normalize" in cfg["processors"]
    assert procs.index("memory_limiter") < procs.index("genai_normalize") < procs.index("genai_cost")
