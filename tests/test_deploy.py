"""The deploy/ files, validated by parsing (Docker and Kubernetes are not available on these machines):
compose structure and references, the upstream Collector config's pipelines, the Kubernetes manifests
and kustomization, and spanhouse's own config for the stack loading with spanhouse's config loader."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from spanhouse.component import ComponentID, Kind
from spanhouse.config import load_config

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COMPOSE_TOP = {"name", "services", "volumes", "networks", "configs", "secrets", "include", "x-spanhouse"}
SERVICE_KEYS = {"image", "build", "command", "entrypoint", "environment", "volumes", "ports", "expose", "depends_on",
                "healthcheck", "ulimits", "restart", "networks", "labels"}


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def test_compose_structure():
    doc = compose()
    assert set(doc) <= COMPOSE_TOP
    services = doc["services"]
    assert {"otel-collector", "spanhouse", "clickhouse", "grafana", "jaeger", "jaeger-ui"} <= set(services)
    host_ports = []
    for name, svc in services.items():
        assert set(svc) <= SERVICE_KEYS, f"{name}: unknown keys {set(svc) - SERVICE_KEYS}"
        assert "image" in svc or "build" in svc, name
        if "image" in svc:
            assert re.match(r"^[a-z0-9./_-]+:[\w.-]+$", svc["image"]), f"{name}: pin an image tag: {svc['image']}"
        for dep in svc.get("depends_on", []):
            assert dep in services, f"{name} depends on unknown service {dep}"
        for port in svc.get("ports", []):
            assert re.match(r"^\d+:\d+$", port), f"{name}: ports are quoted HOST:CONTAINER strings, got {port!r}"
            host_ports.append(port.split(":")[0])
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in (doc.get("volumes") or {}), f"{name}: named volume {source} is not declared"
    assert len(host_ports) == len(set(host_ports)), "two services publish the same host port"
    build = services["spanhouse"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()


def test_compose_wiring():
    services = compose()["services"]
    collector_cfg = services["otel-collector"]["volumes"][0].split(":")[0]
    assert collector_cfg == "./otel-collector/upstream-collector.yaml"
    assert "4317:4317" in services["otel-collector"]["ports"]
    grafana_env = services["grafana"]["environment"]
    assert grafana_env["SPANHOUSE_JAEGER_URL"] == "http://spanhouse:16686"
    assert grafana_env["SPANHOUSE_CLICKHOUSE_HOST"] == "clickhouse"
    assert "grafana-clickhouse-datasource" in grafana_env["GF_INSTALL_PLUGINS"]
    nginx = (DEPLOY / "jaeger-ui" / "nginx.conf").read_text()
    assert re.search(r"location /api/ \{\s*proxy_pass http://spanhouse:16686;", nginx)
    # every ${VAR} the Grafana provisioning uses is set in compose
    provisioning = (DEPLOY / "grafana/provisioning/datasources/spanhouse.yaml").read_text()
    assert set(re.findall(r"\$\{(\w+)\}", provisioning)) <= set(grafana_env)


def collector_config() -> dict:
    return yaml.safe_load((DEPLOY / "otel-collector" / "upstream-collector.yaml").read_text(encoding="utf-8"))


def test_upstream_collector_config_structure():
    cfg = collector_config()
    assert set(cfg) <= {"receivers", "processors", "exporters", "extensions", "connectors", "service"}
    for ext in cfg["service"].get("extensions", []):
        assert ext in cfg["extensions"]
    for pid, pipeline in cfg["service"]["pipelines"].items():
        assert pid.split("/")[0] in ("traces", "metrics", "logs")
        assert pipeline["receivers"] and pipeline["exporters"]
        for kind in ("receivers", "processors", "exporters"):
            for cid in pipeline.get(kind, []):
                assert cid in cfg[kind], f"pipeline {pid} uses {kind[:-1]} {cid}, which is not defined"
    exporters = cfg["service"]["pipelines"]["traces"]["exporters"]
    assert "otlp/spanhouse" in exporters and "otlp/jaeger" in exporters  # a tee beside the existing backend
    # content and evaluations sent as log records reach spanhouse too, whose shipped config has a logs pipeline
    assert "otlp/spanhouse" in cfg["service"]["pipelines"]["logs"]["exporters"]
    services = compose()["services"]
    for cid in exporters:
        host = cfg["exporters"][cid]["endpoint"].split(":")[0]
        assert host in services, f"{cid} points at {host}, which is not a compose service"


@pytest.mark.parametrize("path", [DEPLOY / "spanhouse" / "config.yaml", ROOT / "otel-collector-config.yaml"])
def test_spanhouse_configs_load_with_spanhouse_loader(path):
    config = load_config(path, env={"CLICKHOUSE_PASSWORD": "x"})
    assert config.first(Kind.EXPORTER, "clickhouse") is not None
    assert ComponentID("jaeger_query") in config.service_extensions
    assert ComponentID("sql_query") in config.service_extensions
    if path.parent.name == "spanhouse":
        ch = config.exporters[ComponentID("clickhouse")]
        assert ch.endpoint == "http://clickhouse:8123" and ch.password == "x"


def test_spanhouse_config_loads_with_the_collector_syntax_spanhouse_also_accepts():
    # spanhouse reads an otlp exporter block written for the Collector unchanged
    cfg = collector_config()
    text = yaml.safe_dump({
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "127.0.0.1:4317"}}}},
        "exporters": {"otlp/jaeger": cfg["exporters"]["otlp/jaeger"],
                      "otlp/spanhouse": cfg["exporters"]["otlp/spanhouse"]},
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["otlp/jaeger", "otlp/spanhouse"]}}},
    })
    from spanhouse.config import parse_config_text

    config = parse_config_text(text)
    assert config.exporters[ComponentID("otlp", "spanhouse")].tls.insecure is True


def k8s_documents() -> list[dict]:
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    return docs


def test_kubernetes_manifests():
    docs = k8s_documents()
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert {("Deployment", "spanhouse"), ("Service", "spanhouse"), ("StatefulSet", "clickhouse"),
            ("Service", "clickhouse"), ("Deployment", "grafana")} <= kinds
    for d in docs:
        assert d["apiVersion"] and d["metadata"]["name"]
        if d["kind"] in ("Deployment", "StatefulSet"):
            labels = d["spec"]["template"]["metadata"]["labels"]
            assert d["spec"]["selector"]["matchLabels"].items() <= labels.items()
            for c in d["spec"]["template"]["spec"]["containers"]:
                assert ":" in c["image"]
                named = {p["name"] for p in c.get("ports", [])}
                for probe in ("readinessProbe", "livenessProbe"):
                    if probe in c:
                        assert c[probe]["httpGet"]["port"] in named
    pods = [d["spec"]["template"]["metadata"]["labels"] for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
    for svc in (d for d in docs if d["kind"] == "Service"):
        assert any(svc["spec"]["selector"].items() <= labels.items() for labels in pods), svc["metadata"]["name"]
    spanhouse = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "spanhouse")
    assert {p["port"] for p in spanhouse["spec"]["ports"]} >= {4317, 4318, 8124, 16686}


def test_every_spanhouse_replica_gets_the_redaction_key():
    """Without one shared key each replica (and each restart) makes its own, and the same e-mail gets
    different tokens: the deploy files pass SPANHOUSE_REDACTION_KEY, which the config reads."""
    pod = next(d for d in k8s_documents() if d["kind"] == "Deployment" and d["metadata"]["name"] == "spanhouse")
    (container,) = pod["spec"]["template"]["spec"]["containers"]
    key = next(e for e in container["env"] if e["name"] == "SPANHOUSE_REDACTION_KEY")
    assert key["valueFrom"]["secretKeyRef"]["name"] == "spanhouse-redaction"
    assert "SPANHOUSE_REDACTION_KEY" in compose()["services"]["spanhouse"]["environment"]
    assert "${env:SPANHOUSE_REDACTION_KEY" in (DEPLOY / "spanhouse" / "config.yaml").read_text()


def test_kustomization_references_existing_files():
    kust = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text(encoding="utf-8"))
    for resource in kust["resources"]:
        assert (DEPLOY / resource).is_file(), resource
    generated = {g["name"] for g in kust["configMapGenerator"]}
    for g in kust["configMapGenerator"]:
        for entry in g["files"]:
            assert (DEPLOY / entry.split("=")[-1]).is_file(), entry
    used = set()
    for d in k8s_documents():
        if d["kind"] in ("Deployment", "StatefulSet"):
            volumes = d["spec"]["template"]["spec"].get("volumes", [])
            used |= {v["configMap"]["name"] for v in volumes if "configMap" in v}
    assert used <= generated
    dashboards = {Path(f).name for g in kust["configMapGenerator"] if g["name"] == "grafana-dashboards"
                  for f in g["files"]}
    assert dashboards == {p.name for p in (DEPLOY / "grafana" / "dashboards").glob("*.json")}
