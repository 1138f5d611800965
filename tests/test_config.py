"""Configuration loading: Collector format, env substitution, every problem listed with its path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from spanhouse.component import ComponentID, default_registry
from spanhouse.config import Duration, load_config, parse_config_text
from spanhouse.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_the_default_config_loads_with_the_documented_defaults():
    cfg = load_config(ROOT / "otel-collector-config.yaml", env={})
    otlp = cfg.receivers[ComponentID("otlp")]
    assert otlp.protocols.grpc.endpoint == "127.0.0.1:4317"
    assert otlp.protocols.http.endpoint == "127.0.0.1:4318"
    ch = cfg.exporters[ComponentID("clickhouse")]
    assert ch.endpoint == "chdb://./spanhouse-data" and ch.database == "otel" and ch.ttl == Duration(720 * 3600)
    assert cfg.extensions[ComponentID("health_check")].endpoint == "127.0.0.1:13133"
    assert list(cfg.pipelines) == [ComponentID("traces"), ComponentID("logs")]


def test_packaged_default_is_the_repository_file():
    import spanhouse

    packaged = Path(spanhouse.__file__).with_name("otel-collector-config.yaml")
    assert packaged.read_text() == (ROOT / "otel-collector-config.yaml").read_text()


def test_env_substitution_is_typed_and_has_defaults():
    text = """
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "${env:GRPC_EP}", max_recv_msg_size_mib: "${env:MIB}"}
      http: {endpoint: "${env:MISSING:-127.0.0.1:9999}"}
exporters:
  clickhouse: {endpoint: "chdb://${env:DATA_DIR}/store", password: "a$$b"}
service:
  pipelines:
    traces: {receivers: [otlp], exporters: [clickhouse]}
"""
    cfg = parse_config_text(text, env={"GRPC_EP": "127.0.0.1:1234", "MIB": "16", "DATA_DIR": "/tmp/x"})
    otlp = cfg.receivers[ComponentID("otlp")]
    assert otlp.protocols.grpc.endpoint == "127.0.0.1:1234"
    assert otlp.protocols.grpc.max_recv_msg_size_mib == 16
    assert otlp.protocols.http.endpoint == "127.0.0.1:9999"
    ch = cfg.exporters[ComponentID("clickhouse")]
    assert ch.endpoint == "chdb:///tmp/x/store" and ch.password == "a$b"


def test_a_reference_keeps_its_text_in_string_settings_and_reads_files(tmp_path):
    """`0123`, `yes` or `12:30` from the environment stay as they are in a string setting (YAML would
    read them as 83, true and 750); `${file:PATH}` reads a mounted secret without its final newline."""
    secret = tmp_path / "redaction-key"
    secret.write_text("abcdefghijklmnopqrstuvwxyz012345\n")
    text = f"""
receivers: {{otlp: {{protocols: {{http: {{endpoint: "127.0.0.1:${{env:PORT}}"}}}}}}}}
processors: {{genai_redact: {{hash_key: "${{file:{secret}}}"}}}}
exporters:
  otlphttp: {{endpoint: "http://127.0.0.1:1", headers: {{x-api-key: "${{env:API_KEY}}", x-time: "${{env:AT}}"}}}}
  clickhouse: {{endpoint: "chdb://./x", database: "${{env:DB}}", password: "${{env:PASSWORD}}"}}
service: {{pipelines: {{traces: {{receivers: [otlp], processors: [genai_redact], exporters: [otlphttp, clickhouse]}}}}}}
"""
    env = {"PORT": "4318", "API_KEY": "0123", "AT": "12:30", "DB": "yes", "PASSWORD": "null"}
    cfg = parse_config_text(text, env=env)
    assert cfg.exporters[ComponentID("otlphttp")].headers == {"x-api-key": "0123", "x-time": "12:30"}
    ch = cfg.exporters[ComponentID("clickhouse")]
    assert (ch.database, ch.password) == ("yes", "null")
    assert cfg.processors[ComponentID("genai_redact")].hash_key == "abcdefghijklmnopqrstuvwxyz012345"
    assert cfg.receivers[ComponentID("otlp")].protocols.http.endpoint == "127.0.0.1:4318"


@pytest.mark.parametrize("reference, message", [
    ("${file:/nonexistent/key}", "cannot read /nonexistent/key for ${file:/nonexistent/key}"),
    ("${env:MY-PASS}", "${env:MY-PASS}: not a valid environment variable name"),
    ("${https://vault.local/key}", "${https://vault.local/key}: the https: provider is not supported"),
    ("${yaml:x: 1}", "${yaml:x: 1}: the yaml: provider is not supported"),
])
def test_references_spanhouse_cannot_resolve_are_errors_not_literal_text(reference, message):
    text = f"""
receivers: {{otlp: {{protocols: {{http: {{}}}}}}}}
processors: {{genai_redact: {{hash_key: "{reference}"}}}}
exporters: {{debug: {{}}}}
service: {{pipelines: {{traces: {{receivers: [otlp], processors: [genai_redact], exporters: [debug]}}}}}}
"""
    with pytest.raises(ConfigError) as err:
        parse_config_text(text, env={})
    assert f"processors::genai_redact::hash_key: {message}" in str(err.value)


def test_duplicate_keys_and_non_utf8_files_are_refused_with_their_line(tmp_path):
    text = """receivers: {otlp: {protocols: {http: {}}}}
processors: {batch: {}}
exporters: {debug: {}}
service: {pipelines: {traces: {receivers: [otlp], processors: [batch], exporters: [debug]}}}
processors: {memory_limiter: {limit_mib: 100}}
"""
    with pytest.raises(ConfigError, match=r"line 5, column 1: duplicate key 'processors' \(first on line 2\)"):
        parse_config_text(text, env={})
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(text.split("processors: {memory")[0].encode() + b"# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 0xe9 on line 5\); save the file as UTF-8"):
        load_config(latin1, env={})


def test_an_unset_variable_is_named_when_the_setting_it_emptied_is_invalid():
    text = """
receivers: {otlp: {protocols: {http: {}}}}
exporters: {clickhouse: {endpoint: "chdb://./x", database: "${env:SPANHOUSE_TEST_DB}"}}
service: {pipelines: {traces: {receivers: [otlp], exporters: [clickhouse]}}}
"""
    with pytest.raises(ConfigError) as err:
        parse_config_text(text, env={})
    assert "environment variable SPANHOUSE_TEST_DB is not set" in str(err.value)


BAD = """
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "nowhere"}
  kafka: {}
processors:
  batch: {send_batch_size: 0, send_batch_max_size: -1, timeot: 1s}
exporters:
  clickhouse:
    endpoint: mysql://db
    ttl: 30 days
    database: "otel-prod"
extensions:
  health_check: {endpoint: "127.0.0.1:13133"}
service:
  extensions: [health_check, zpages]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch, memory_limiter]
      exporters: [clickhouse, otlp/jaeger]
    metrics:
      receivers: [otlp]
      exporters: [clickhouse]
"""


def test_every_problem_is_reported_with_its_path():
    with pytest.raises(ConfigError) as err:
        parse_config_text(BAD, env={})
    problems = "\n".join(err.value.problems)
    expected = [
        "receivers::otlp::protocols::grpc::endpoint: expected host:port",
        "receivers::kafka: unknown receiver type 'kafka'; known types: otlp",
        "processors::batch::timeot: unknown setting; valid settings are: send_batch_max_size, send_batch_size, timeout",
        "processors::batch::send_batch_size: must be greater than 0",
        "processors::batch::send_batch_max_size: must be 0 (no bound) or greater",
        "exporters::clickhouse::endpoint: 'mysql://db': use chdb://PATH",
        "exporters::clickhouse::ttl: expected a duration with a unit",
        "exporters::clickhouse::database: 'otel-prod' is not a plain identifier",
        "service::extensions[1]: extension 'zpages' is used here but not configured under extensions",
        "service::pipelines::traces::processors[1]: processor 'memory_limiter' is used here but not configured",
        "service::pipelines::traces::exporters[1]: exporter 'otlp/jaeger' is used here but not configured",
        "service::pipelines::metrics: unsupported signal 'metrics'",
    ]
    for line in expected:
        assert line in problems, f"missing: {line}\nin:\n{problems}"
    assert len(err.value.problems) == len(expected)


@pytest.mark.parametrize("text, message", [
    ("receivers: [", "not valid YAML at line 1"),
    ("? [a]\n: 1\n", "a key must be a plain value, not a list or mapping"),
    ("processors:\n  genai_cost:\n    overrides: [{valid_from: 2026-13-01}]\n",
     "not valid YAML at line 3, column 30: '2026-13-01' is not a valid date or time"),
    ("- a\n- b\n", "the top level must be a mapping"),
    ("service: {pipelines: {}}", "at least one pipeline is required"),
    ("receivers: {otlp: {}}\nexporters: {debug: {}}\nservice: {pipelines: {traces: {receivers: [otlp], "
     "exporters: [debug]}}}", "receivers::otlp::protocols: enable at least one of grpc or http"),
    ("receivers: {otlp: {protocols: {http: }}}\nexporters: {debug: {verbosity: loud}}\nservice: {pipelines: "
     "{traces: {receivers: [otlp], exporters: [debug]}}}", "exporters::debug::verbosity: 'loud' is not one of"),
    ("receivers: {otlp: {protocols: {http: }}}\nexporters: {debug: }\nservice: {pipelines: "
     "{traces: {receivers: [otlp], exporters: []}}}", "a pipeline needs at least one exporter"),
    ("receivers: {otlp: {protocols: {http: }}}\nexporters: {clickhouse: {endpoint: 'http://u:S3CR3T@db:8123'}}\n"
     "service: {pipelines: {traces: {receivers: [otlp], exporters: [clickhouse]}}}",
     "exporters::clickhouse::endpoint: put the user and password in `username` and `password`"),
    ("receivers: {otlp: {protocols: {http: }}}\nexporters: {clickhouse: {password: {nested: S3CR3T}}}\n"
     "service: {pipelines: {traces: {receivers: [otlp], exporters: [clickhouse]}}}",
     "exporters::clickhouse::password: expected a string, got dict"),
])
def test_single_problems(text, message):
    with pytest.raises(ConfigError) as err:
        parse_config_text(text, env={})
    assert any(message in p for p in err.value.problems), err.value.problems
    assert "S3CR3T" not in str(err.value.problems)


def test_a_misspelled_only_exporter_is_reported_once():
    text = ("receivers: {otlp: {protocols: {http: }}}\nexporters: {clickhouse: }\nservice: {pipelines: "
            "{traces: {receivers: [otpl], exporters: [clickhous]}}}")
    with pytest.raises(ConfigError) as err:
        parse_config_text(text, env={})
    assert err.value.problems == [
        "service::pipelines::traces::receivers[0]: receiver 'otpl' is used here but not configured under receivers",
        "service::pipelines::traces::exporters[0]: exporter 'clickhous' is used here but not configured under "
        "exporters",
    ]


def test_serve_refuses_a_bad_config_listing_every_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    proc = subprocess.run([sys.executable, "-m", "spanhouse.cli", "serve", "--config", str(bad)],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2
    assert "exporters::clickhouse::ttl:" in proc.stderr and "service::pipelines::metrics" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "spanhouse-data").exists()


def test_every_builtin_factory_has_a_default_config_and_a_safe_lifecycle():
    from spanhouse.component import CreateSettings

    registry = default_registry()
    assert not registry.load_errors
    types = {(f.kind.value, f.type) for f in registry}
    assert {("receivers", "otlp"), ("processors", "batch"), ("processors", "memory_limiter"),
            ("exporters", "clickhouse"), ("exporters", "debug"), ("extensions", "health_check"),
            ("extensions", "sql_query")} <= types
    for factory in registry:
        cfg = factory.config()
        component = factory.create(CreateSettings(ComponentID(factory.type)), cfg)
        component.shutdown()  # safe without start
        component.shutdown()  # and idempotent


def test_connectors_are_refused_with_what_to_do_instead():
    text = """
receivers: {otlp: {protocols: {http: {}}}}
exporters: {debug: {}}
connectors: {forward: {}}
service: {pipelines: {traces: {receivers: [otlp], exporters: [debug]}}}
"""
    with pytest.raises(ConfigError, match="connectors: connectors are not supported by spanhouse"):
        parse_config_text(text, env={})


def test_service_telemetry_logs_level_is_read_and_the_rest_is_said_to_be_unused():
    text = """
receivers: {otlp: {protocols: {http: {}}}}
exporters: {debug: {}}
service:
  telemetry: {logs: {level: DEBUG, encoding: json}, metrics: {level: detailed}}
  pipelines: {traces: {receivers: [otlp], exporters: [debug]}}
"""
    cfg = parse_config_text(text, env={})
    assert cfg.log_level == "debug"
    assert any("service::telemetry::metrics: not used by spanhouse" in w for w in cfg.warnings)
    assert any("service::telemetry::logs::encoding: not used by spanhouse" in w for w in cfg.warnings)
    with pytest.raises(ConfigError, match="service::telemetry::logs::level: 'loud' is not one of debug, info"):
        parse_config_text(text.replace("DEBUG", "loud"), env={})


def test_a_component_of_an_unknown_type_is_reported_once_where_it_is_configured():
    text = """
receivers: {otlp: {protocols: {http: }}}
processors: {attributes: {actions: []}}
exporters: {clickhouse: }
extensions: {pprof: {}, zpages: {}}
service:
  extensions: [pprof, zpages, health_check]
  pipelines:
    traces: {receivers: [otlp], processors: [attributes], exporters: [clickhouse]}
"""
    with pytest.raises(ConfigError) as err:
        parse_config_text(text, env={})
    # the known types are listed after the ';' (whatever is installed)
    assert [p.split(";")[0] for p in err.value.problems] == [
        "processors::attributes: unknown processor type 'attributes'",
        "extensions::pprof: unknown extension type 'pprof'",
        "extensions::zpages: unknown extension type 'zpages'",
        # not configured at all: that one is still reported where it is used
        "service::extensions[2]: extension 'health_check' is used here but not configured under extensions",
    ]
