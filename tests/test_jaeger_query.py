"""Contract tests of the `jaeger_query` extension: every Jaeger endpoint, over data written through the
real OTLP receiver by the real OpenTelemetry SDK exporter."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, set_span_in_context
from support import service_config, start_service, unique_database

from spanhouse import semconv as sc
from spanhouse.component import ComponentID

MS = 10**6
T0 = (time.time_ns() // 10**9 - 3600) * 10**9  # an hour ago, on a whole second
EXTENSIONS = {"jaeger_query": {"endpoint": "127.0.0.1:0"}}


def record(traces: int = 4) -> tuple[list, dict[str, Any]]:
    """`traces` traces of frontend (server) → support-copilot (a chat client call with an evaluation event,
    and a failing tool call); trace i starts at T0 + i seconds. Returns the spans and known facts."""
    memory = InMemorySpanExporter()
    providers = []

    def tracer(service: str):
        provider = TracerProvider(resource=Resource.create({sc.SERVICE_NAME: service, sc.SERVICE_VERSION: "2.0.1"}))
        provider.add_span_processor(SimpleSpanProcessor(memory))
        providers.append(provider)
        return provider.get_tracer("tests.jaeger", "0.9")

    front, copilot = tracer("frontend"), tracer("support-copilot")
    facts: dict[str, Any] = {"traces": []}
    for i in range(traces):
        start = T0 + i * 10**9
        root = front.start_span("POST /tickets", kind=SpanKind.SERVER, start_time=start,
                                attributes={"http.route": "/tickets"})
        ctx = set_span_in_context(root)
        model = "gpt-4o" if i % 2 == 0 else "claude-sonnet-4-5"
        chat = copilot.start_span(f"chat {model}", context=ctx, kind=SpanKind.CLIENT, start_time=start + 5 * MS,
                                  attributes={sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_REQUEST_MODEL: model,
                                              sc.GEN_AI_USAGE_INPUT_TOKENS: 1200 + i,
                                              sc.GEN_AI_REQUEST_TEMPERATURE: 0.5,
                                              sc.GEN_AI_RESPONSE_FINISH_REASONS: ["stop"],
                                              sc.GEN_AI_REQUEST_STREAM: True},
                                  links=[Link(root.get_span_context(), {"link.note": "see root"})])
        chat.add_event(sc.EVENT_GEN_AI_EVALUATION_RESULT, {sc.GEN_AI_EVALUATION_NAME: "relevance",
                                                           sc.GEN_AI_EVALUATION_SCORE_VALUE: 0.8},
                       timestamp=start + 300 * MS)
        chat.end(end_time=start + (405 + 100 * i) * MS)  # durations 400ms, 500ms, 600ms, ...
        tool = copilot.start_span("execute_tool lookup_order", context=ctx, kind=SpanKind.INTERNAL,
                                  start_time=start + 410 * MS)
        tool.set_status(Status(StatusCode.ERROR, "orders API timed out"))
        tool.end(end_time=start + 420 * MS)
        root.end(end_time=start + 2000 * MS)
        facts["traces"].append({
            "id": format(root.get_span_context().trace_id, "032x"),
            "root": format(root.get_span_context().span_id, "016x"),
            "chat": format(chat.get_span_context().span_id, "016x"),
            "start": start, "model": model})
    for provider in providers:
        provider.shutdown()
    return list(memory.get_finished_spans()), facts


@pytest.fixture(scope="module")
def jaeger():
    db = unique_database("jaeger")
    svc = start_service(service_config(db, extensions=EXTENSIONS), db)
    spans, facts = record()
    exporter = OTLPSpanExporter(endpoint=svc.http_url + "/v1/traces")
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()
    svc.wait_rows("SELECT 1 FROM otel_traces", len(spans))
    facts["base"] = f"http://127.0.0.1:{svc.service.host.extensions[ComponentID('jaeger_query')].server.port}"
    facts["svc"] = svc
    yield facts
    svc.stop()


def get(base: str, path: str, params: dict | list | None = None) -> tuple[int, Any]:
    url = base + path + ("?" + urllib.parse.urlencode(params, doseq=True) if params else "")
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.headers["Content-Type"] == "application/json"
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        assert err.headers["Content-Type"] == "application/json"
        return err.code, json.loads(err.read())


def v1_ok(jaeger, path, params=None) -> Any:
    status, body = get(jaeger["base"], path, params)
    assert status == 200, body
    assert set(body) == {"data", "total", "limit", "offset", "errors"}
    return body


def v1_error(jaeger, path, params, status) -> str:
    code, body = get(jaeger["base"], path, params)
    assert code == status, body
    assert body["data"] is None and body["errors"][0]["code"] == status
    return body["errors"][0]["msg"]


# --- services and operations ----------------------------------------------------------------


def test_services(jaeger):
    body = v1_ok(jaeger, "/api/services")
    assert body["data"] == ["frontend", "support-copilot"] and body["total"] == 2 and body["errors"] is None
    status, v3 = get(jaeger["base"], "/api/v3/services")
    assert status == 200 and v3 == {"services": ["frontend", "support-copilot"]}


def test_operations(jaeger):
    legacy = v1_ok(jaeger, "/api/services/support-copilot/operations")
    assert legacy["data"] == ["chat claude-sonnet-4-5", "chat gpt-4o", "execute_tool lookup_order"]
    assert legacy["total"] == 3
    ops = v1_ok(jaeger, "/api/operations", {"service": "support-copilot"})["data"]
    assert {"name": "chat gpt-4o", "spanKind": "client"} in ops
    assert {"name": "execute_tool lookup_order", "spanKind": "internal"} in ops
    only_client = v1_ok(jaeger, "/api/operations", {"service": "support-copilot", "spanKind": "client"})["data"]
    assert {o["spanKind"] for o in only_client} == {"client"} and len(only_client) == 2
    assert v1_error(jaeger, "/api/operations", {}, 400) == "parameter 'service' is required"
    status, v3 = get(jaeger["base"], "/api/v3/operations", {"service": "frontend"})
    assert status == 200 and v3 == {"operations": [{"name": "POST /tickets", "spanKind": "server"}]}
    status, v3 = get(jaeger["base"], "/api/v3/operations", {})
    assert status == 400 and v3["error"]["httpCode"] == 400


# --- one trace --------------------------------------------------------------------------------


def tags(span_or_process: dict) -> dict[str, tuple[str, Any]]:
    return {t["key"]: (t["type"], t["value"]) for t in span_or_process["tags"]}


def test_trace_by_id_shape_units_and_tags(jaeger):
    fact = jaeger["traces"][1]
    body = v1_ok(jaeger, f"/api/traces/{fact['id']}")
    assert body["total"] == 1
    (trace,) = body["data"]
    assert set(trace) == {"traceID", "spans", "processes", "warnings"} and trace["traceID"] == fact["id"]
    spans = {s["operationName"]: s for s in trace["spans"]}
    assert list(spans) == ["POST /tickets", "chat claude-sonnet-4-5", "execute_tool lookup_order"]  # by start
    root, chat, tool = spans.values()
    for s in trace["spans"]:
        assert set(s) == {"traceID", "spanID", "flags", "operationName", "references", "startTime", "duration",
                          "tags", "logs", "processID", "warnings"}
        assert s["traceID"] == fact["id"] and isinstance(s["startTime"], int) and isinstance(s["duration"], int)
    # microseconds
    assert root["startTime"] == fact["start"] // 1000 and root["duration"] == 2_000_000
    assert chat["startTime"] == (fact["start"] + 5 * MS) // 1000 and chat["duration"] == 500_000
    # parent first as CHILD_OF, the link as FOLLOWS_FROM
    assert root["references"] == []
    assert chat["references"] == [
        {"refType": "CHILD_OF", "traceID": fact["id"], "spanID": fact["root"]},
        {"refType": "FOLLOWS_FROM", "traceID": fact["id"], "spanID": fact["root"]}]
    # kind, status and typed LLM attributes as tags
    t = tags(chat)
    assert t["span.kind"] == ("string", "client")
    assert t[sc.GEN_AI_USAGE_INPUT_TOKENS] == ("int64", 1201)
    assert t[sc.GEN_AI_REQUEST_TEMPERATURE] == ("float64", 0.5)
    assert t[sc.GEN_AI_REQUEST_STREAM] == ("bool", True)
    assert t[sc.GEN_AI_REQUEST_MODEL] == ("string", "claude-sonnet-4-5")
    assert t[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("string", '["stop"]')
    assert t["otel.scope.name"] == ("string", "tests.jaeger") and t["otel.scope.version"] == ("string", "0.9")
    assert "error" not in t and "otel.status_code" not in t
    t = tags(tool)
    assert t["span.kind"] == ("string", "internal") and t["error"] == ("bool", True)
    assert t["otel.status_code"] == ("string", "ERROR")
    assert t["otel.status_description"] == ("string", "orders API timed out")
    assert tags(root)["span.kind"] == ("string", "server")
    # the evaluation event as a log, in microseconds
    (log,) = chat["logs"]
    assert log["timestamp"] == (fact["start"] + 300 * MS) // 1000
    assert log["fields"][0] == {"key": "event", "type": "string", "value": sc.EVENT_GEN_AI_EVALUATION_RESULT}
    assert {"key": sc.GEN_AI_EVALUATION_SCORE_VALUE, "type": "float64", "value": 0.8} in log["fields"]
    # one process per service; service.name is the serviceName, not a tag
    assert set(trace["processes"]) == {"p1", "p2"}
    by_service = {p["serviceName"]: (pid, p) for pid, p in trace["processes"].items()}
    assert root["processID"] == by_service["frontend"][0] and chat["processID"] == by_service["support-copilot"][0]
    ptags = tags(by_service["frontend"][1])
    assert ptags[sc.SERVICE_VERSION] == ("string", "2.0.1") and sc.SERVICE_NAME not in ptags


def test_a_span_whose_parent_never_arrived_carries_a_warning(jaeger):
    """Jaeger UI lists a span's warnings beside it: an orphan says which parent is missing."""
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    missing = SpanContext(trace_id=0x5EB1E55_0000_0000_0000_0000_0000_0001, span_id=0xDEAD_BEEF_0000_0001,
                          is_remote=True, trace_flags=TraceFlags(1))
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({sc.SERVICE_NAME: "orphans"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests.jaeger")
    child = tracer.start_span("execute_tool search", context=set_span_in_context(NonRecordingSpan(missing)),
                              start_time=T0)
    grandchild = tracer.start_span("chat gpt-4o", context=set_span_in_context(child), start_time=T0 + MS)
    grandchild.end(end_time=T0 + 2 * MS)
    child.end(end_time=T0 + 3 * MS)
    provider.shutdown()
    exporter = OTLPSpanExporter(endpoint=jaeger["svc"].http_url + "/v1/traces")
    assert exporter.export(list(memory.get_finished_spans())) is SpanExportResult.SUCCESS
    exporter.shutdown()
    trace_id = format(missing.trace_id, "032x")
    jaeger["svc"].wait_rows(f"SELECT 1 FROM otel_traces WHERE TraceId = '{trace_id}'", 2)
    (trace,) = v1_ok(jaeger, f"/api/traces/{trace_id}")["data"]
    spans = {s["operationName"]: s for s in trace["spans"]}
    assert spans["execute_tool search"]["warnings"] == [
        f"invalid parent span IDs={missing.span_id:016x}: the parent span is not stored (yet)"]
    assert spans["chat gpt-4o"]["warnings"] is None


def test_trace_by_id_time_bounds_ids_and_errors(jaeger):
    fact = jaeger["traces"][0]
    start_us, end_us = fact["start"] // 1000, fact["start"] // 1000 + 3_000_000
    for params in ({"start": start_us, "end": end_us}, {"start": start_us // 1000, "end": end_us // 1000}):
        assert len(v1_ok(jaeger, f"/api/traces/{fact['id']}", params)["data"][0]["spans"]) == 3
    # a window after the trace finds nothing
    assert v1_error(jaeger, f"/api/traces/{fact['id']}", {"start": end_us, "end": end_us + 10**6}, 404) == \
        "trace not found"
    assert v1_ok(jaeger, f"/api/traces/{fact['id'].upper()}")["data"][0]["traceID"] == fact["id"]
    assert v1_error(jaeger, "/api/traces/" + "ab" * 16, None, 404) == "trace not found"
    assert "malformed trace id" in v1_error(jaeger, "/api/traces/not-a-trace-id", None, 400)
    assert "must be an integer" in v1_error(jaeger, f"/api/traces/{fact['id']}", {"start": "yesterday"}, 400)
    # a bound past what the store holds (April 2262) is the end of it: nothing starts after it
    assert v1_error(jaeger, f"/api/traces/{fact['id']}", {"start": "9" * 20}, 404) == "trace not found"
    assert len(v1_ok(jaeger, f"/api/traces/{fact['id']}", {"start": "0", "end": "9" * 20})["data"][0]["spans"]) == 3


# --- search -------------------------------------------------------------------------------------


def search(jaeger, **params) -> list[dict]:
    params.setdefault("start", (T0 - 60 * 10**9) // 1000)
    params.setdefault("end", (T0 + 600 * 10**9) // 1000)
    return v1_ok(jaeger, "/api/traces", params)["data"]


def ids(traces: list[dict]) -> list[str]:
    return [t["traceID"] for t in traces]


def test_search_filters(jaeger):
    all_ids = [t["id"] for t in jaeger["traces"]]
    newest_first = list(reversed(all_ids))
    assert ids(search(jaeger, service="frontend")) == newest_first
    found = search(jaeger, service="support-copilot", operation="chat gpt-4o")
    assert ids(found) == [all_ids[2], all_ids[0]]
    assert len(found[0]["spans"]) == 3  # whole traces, not only the matching spans
    assert ids(search(jaeger, service="support-copilot", tags=json.dumps({sc.GEN_AI_REQUEST_MODEL: "gpt-4o"}))) == \
        [all_ids[2], all_ids[0]]
    assert ids(search(jaeger, service="support-copilot", tag=f"{sc.GEN_AI_USAGE_INPUT_TOKENS}:1203")) == [all_ids[3]]
    assert ids(search(jaeger, service="support-copilot", tags=json.dumps({"error": "true"}))) == newest_first
    assert ids(search(jaeger, service="frontend", tags=json.dumps({"error": "true"}))) == []
    assert ids(search(jaeger, service="support-copilot", tags=json.dumps({"span.kind": "client"}),
                      operation="chat claude-sonnet-4-5")) == [all_ids[3], all_ids[1]]
    # resource attributes match too, and so do the tags made from the scope's columns
    assert len(search(jaeger, service="frontend", tag=f"{sc.SERVICE_VERSION}:2.0.1")) == 4
    assert ids(search(jaeger, service="frontend", tags=json.dumps({"otel.scope.version": "0.9"}))) == newest_first
    assert ids(search(jaeger, service="frontend", tags=json.dumps({"otel.scope.name": "tests.jaeger"}))) == \
        newest_first
    assert search(jaeger, service="frontend", tags=json.dumps({"otel.scope.version": "1.0"})) == []
    # durations in Go units: the chat spans last 400, 500, 600, 700 ms
    assert ids(search(jaeger, service="support-copilot", operation="chat gpt-4o", minDuration="550ms")) == \
        [all_ids[2]]
    assert ids(search(jaeger, service="support-copilot", minDuration="0.45s", maxDuration="650ms")) == \
        [all_ids[2], all_ids[1]]
    assert search(jaeger, service="no-such-service") == []


def test_search_limit_and_time_range(jaeger):
    all_ids = [t["id"] for t in jaeger["traces"]]
    assert ids(search(jaeger, service="frontend", limit=2)) == [all_ids[3], all_ids[2]]
    window = {"start": (T0 + 1 * 10**9) // 1000, "end": (T0 + 2 * 10**9 + 500 * MS) // 1000}
    assert ids(search(jaeger, service="frontend", **window)) == [all_ids[2], all_ids[1]]
    # no start: the last two days, which holds all of them
    body = v1_ok(jaeger, "/api/traces", {"service": "frontend"})
    assert body["total"] == 4


def test_search_by_trace_ids_reports_unknown_ones(jaeger):
    known = jaeger["traces"][0]["id"]
    body = v1_ok(jaeger, "/api/traces", [("traceID", known), ("traceID", "cd" * 16)])
    assert ids(body["data"]) == [known]
    assert body["errors"] == [{"msg": "trace not found", "traceID": "cd" * 16}]


@pytest.mark.parametrize("params, message", [
    ({}, "parameter 'service' is required"),
    ({"service": "frontend", "minDuration": "2s", "maxDuration": "1s"}, "must not be less than 'minDuration'"),
    ({"service": "frontend", "minDuration": "fast"}, "must be a duration"),
    ({"service": "frontend", "tags": "{not json"}, "malformed 'tags' parameter"),
    ({"service": "frontend", "tag": "no-colon"}, "expected key:value"),
    ({"service": "frontend", "limit": "-1"}, "must be 0 or more"),
    ({"service": "frontend", "start": "20", "end": "10"}, "'start' must not be after 'end'"),
])
def test_search_bad_parameters(jaeger, params, message):
    assert message in v1_error(jaeger, "/api/traces", params, 400)


# --- dependencies ------------------------------------------------------------------------------


def test_dependencies(jaeger):
    end_ms = (T0 + 600 * 10**9) // MS
    body = v1_ok(jaeger, "/api/dependencies", {"endTs": end_ms, "lookback": 3600 * 1000})
    assert body["data"] == [{"parent": "frontend", "child": "support-copilot", "callCount": 8}]
    assert v1_ok(jaeger, "/api/dependencies", {"endTs": (T0 - 10**9) // MS, "lookback": 1000})["data"] == []
    assert v1_ok(jaeger, "/api/dependencies")["data"][0]["callCount"] == 8  # default: the last 24 h
    assert "must be an integer" in v1_error(jaeger, "/api/dependencies", {"endTs": "now"}, 400)


# --- api_v3 --------------------------------------------------------------------------------------


def rfc3339(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


def test_v3_trace_is_otlp_json(jaeger):
    fact = jaeger["traces"][0]
    status, body = get(jaeger["base"], f"/api/v3/traces/{fact['id']}")
    assert status == 200
    resource_spans = body["result"]["resourceSpans"]
    services = {a["value"]["stringValue"] for rs in resource_spans for a in rs["resource"]["attributes"]
                if a["key"] == sc.SERVICE_NAME}
    assert services == {"frontend", "support-copilot"}
    spans = {s["name"]: s for rs in resource_spans for ss in rs["scopeSpans"] for s in ss["spans"]}
    chat = spans["chat gpt-4o"]
    assert chat["traceId"] == fact["id"] and chat["parentSpanId"] == fact["root"] and chat["kind"] == 3
    assert chat["startTimeUnixNano"] == str(fact["start"] + 5 * MS)
    attrs = {a["key"]: a["value"] for a in chat["attributes"]}
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == {"intValue": "1200"}
    assert attrs[sc.GEN_AI_REQUEST_TEMPERATURE] == {"doubleValue": 0.5}
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == {"arrayValue": {"values": [{"stringValue": "stop"}]}}
    assert chat["events"][0]["name"] == sc.EVENT_GEN_AI_EVALUATION_RESULT
    assert spans["execute_tool lookup_order"]["status"] == {"code": 2, "message": "orders API timed out"}
    status, body = get(jaeger["base"], "/api/v3/traces/" + "ef" * 16)
    assert status == 404 and body["error"]["httpCode"] == 404
    status, body = get(jaeger["base"], f"/api/v3/traces/{fact['id']}",
                       {"startTime": rfc3339(fact["start"]), "endTime": rfc3339(fact["start"] + 3 * 10**9)})
    assert status == 200
    status, body = get(jaeger["base"], f"/api/v3/traces/{fact['id']}", {"startTime": "yesterday"})
    assert status == 400 and "RFC 3339" in body["error"]["message"]


def test_v3_search(jaeger):
    params = {"query.serviceName": "support-copilot", "query.operationName": "chat gpt-4o",
              "query.startTimeMin": rfc3339(T0 - 60 * 10**9), "query.startTimeMax": rfc3339(T0 + 600 * 10**9)}
    status, body = get(jaeger["base"], "/api/v3/traces", params)
    assert status == 200
    trace_ids = {s["traceId"] for rs in body["result"]["resourceSpans"] for ss in rs["scopeSpans"]
                 for s in ss["spans"]}
    assert trace_ids == {jaeger["traces"][0]["id"], jaeger["traces"][2]["id"]}
    errors_only = {**params, "query.operationName": "", "query.searchDepth": "1",
                   "query.attributes": json.dumps({"error": "true"})}
    status, body = get(jaeger["base"], "/api/v3/traces", errors_only)
    assert status == 200 and len({s["traceId"] for rs in body["result"]["resourceSpans"]
                                  for ss in rs["scopeSpans"] for s in ss["spans"]}) == 1
    status, body = get(jaeger["base"], "/api/v3/traces", {**params, "query.serviceName": "nobody"})
    assert status == 404 and body["error"]["message"] == "No traces found"
    status, body = get(jaeger["base"], "/api/v3/traces", {"query.serviceName": "frontend"})
    assert status == 400 and "required" in body["error"]["message"]
    # errors name the v3 parameters
    status, body = get(jaeger["base"], "/api/v3/traces", {**params, "query.searchDepth": "0"})
    assert status == 400 and body["error"]["message"] == "parameter 'query.searchDepth' must be 1 or more, got 0"
    swapped = {**params, "query.startTimeMin": params["query.startTimeMax"],
               "query.startTimeMax": params["query.startTimeMin"]}
    status, body = get(jaeger["base"], "/api/v3/traces", swapped)
    assert status == 400 and body["error"]["message"] == "'query.startTimeMin' must not be after 'query.startTimeMax'"


@pytest.mark.parametrize("start, end", [
    ("2026-01-01T00:00:00Z", "2263-01-01T00:00:00Z"),  # past DateTime64(9)'s April 2262
    ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z"),  # Jaeger's whole range
    ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"),
])
def test_a_search_window_beyond_what_the_store_holds_covers_all_of_it(jaeger, start, end):
    """Jaeger takes any RFC 3339 time (years 1 to 9999); the store holds 1970 to April 2262. A window
    reaching beyond is clamped to that range rather than silently finding nothing."""
    everything = {t["id"] for t in jaeger["traces"]}
    params = {"query.serviceName": "frontend", "query.startTimeMin": start, "query.startTimeMax": end}
    status, body = get(jaeger["base"], "/api/v3/trace-summaries", params)
    assert status == 200 and {s["traceId"] for s in body["summaries"]} == everything
    status, body = get(jaeger["base"], "/api/v3/traces", params)
    assert status == 200 and {s["traceId"] for rs in body["result"]["resourceSpans"] for ss in rs["scopeSpans"]
                              for s in ss["spans"]} == everything
    fact = jaeger["traces"][0]
    status, body = get(jaeger["base"], f"/api/v3/traces/{fact['id']}", {"startTime": start, "endTime": end})
    assert status == 200 and len(body["result"]["resourceSpans"]) >= 1
    # v1 likewise: microseconds past 2262
    assert {t["traceID"] for t in v1_ok(jaeger, "/api/traces", {"service": "frontend", "start": "0",
                                                                "end": "9" * 20})["data"]} == everything
    assert v1_ok(jaeger, "/api/dependencies", {"endTs": "9" * 20, "lookback": "9" * 20})["data"] == \
        [{"parent": "frontend", "child": "support-copilot", "callCount": 8}]


def test_unknown_paths_and_methods(jaeger):
    assert v1_error(jaeger, "/api/nothing", None, 404).startswith("no Jaeger API")
    req = urllib.request.Request(jaeger["base"] + "/api/services", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 405


def test_trace_lookup_goes_through_the_trace_id_table():
    """Fetching a trace reads only its lookup window: without a lookup row the trace is not read at all
    (the same contract Grafana's ClickHouse data source relies on)."""
    db = unique_database("jaeger_lookup")
    svc = start_service(service_config(db, extensions=EXTENSIONS), db)
    try:
        spans, facts = record(traces=1)
        exporter = OTLPSpanExporter(endpoint=svc.http_url + "/v1/traces")
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        exporter.shutdown()
        base = f"http://127.0.0.1:{svc.extension('jaeger_query').server.port}"
        tid = facts["traces"][0]["id"]
        assert svc.rows("SELECT toUnixTimestamp(min(Start)), toUnixTimestamp(max(End)) FROM otel_traces_trace_id_ts "
                        "WHERE TraceId = {t:String}", {"t": tid}) == [(T0 // 10**9, T0 // 10**9)]  # span starts
        assert get(base, f"/api/traces/{tid}")[0] == 200
        client = svc.client()
        client.command("TRUNCATE TABLE otel_traces_trace_id_ts")
        client.close()
        assert get(base, f"/api/traces/{tid}")[0] == 404
    finally:
        svc.stop()


def _one_trace_with_logs(prefix: str):
    """A service whose traces and logs pipelines both store, holding one recorded trace: (service, spans,
    facts). The caller stops the service."""
    db = unique_database(prefix)
    pipeline = {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["clickhouse"]}
    svc = start_service(service_config(db, extensions=EXTENSIONS,
                                       pipelines={"traces": pipeline, "logs": dict(pipeline)}), db)
    try:
        spans, facts = record(traces=1)
        exporter = OTLPSpanExporter(endpoint=svc.http_url + "/v1/traces")
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        exporter.shutdown()
    except BaseException:
        svc.stop()
        raise
    return svc, spans, facts


def test_log_records_of_a_span_appear_as_its_logs():
    """Evaluation results and prompts sent as log records show on their span, like span events; an
    evaluation result does however long after the trace it came."""
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.trace import NonRecordingSpan

    svc, spans, facts = _one_trace_with_logs("jaegerlogs")
    try:
        fact = facts["traces"][0]
        chat = next(s for s in spans if s.name.startswith("chat"))
        provider = LoggerProvider(resource=Resource.create({sc.SERVICE_NAME: "support-copilot"}))
        provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=svc.http_url + "/v1/logs")))
        logger = provider.get_logger("tests.jaeger")
        with_chat = set_span_in_context(NonRecordingSpan(chat.context))
        logger.emit(timestamp=fact["start"] + 350 * MS, context=with_chat, event_name=sc.EVENT_GEN_AI_EVALUATION_RESULT,
                    attributes={sc.GEN_AI_EVALUATION_NAME: "policy_compliance", sc.GEN_AI_EVALUATION_SCORE_VALUE: 1.0})
        logger.emit(timestamp=fact["start"] + 6 * MS, context=with_chat, event_name="gen_ai.user.message",
                    body={"content": "Where is my order?"})
        # human feedback three hours after the trace ended
        logger.emit(timestamp=fact["start"] + 3 * 3600 * 1000 * MS, context=with_chat,
                    event_name=sc.EVENT_GEN_AI_EVALUATION_RESULT,
                    attributes={sc.GEN_AI_EVALUATION_NAME: "user_feedback", sc.GEN_AI_EVALUATION_SCORE_VALUE: 0.0})
        provider.shutdown()
        svc.wait_rows("SELECT 1 FROM otel_logs", 3)
        facts["base"] = f"http://127.0.0.1:{svc.service.host.extensions[ComponentID('jaeger_query')].server.port}"
        (trace,) = v1_ok(facts, f"/api/traces/{fact['id']}")["data"]
    finally:
        svc.stop()
    chat_span = next(s for s in trace["spans"] if s["operationName"].startswith("chat"))
    events = [(log["timestamp"], log["fields"][0]["value"], log["fields"]) for log in chat_span["logs"]]
    assert [(t, name) for t, name, _ in events] == [
        ((fact["start"] + 6 * MS) // 1000, "gen_ai.user.message"),
        ((fact["start"] + 300 * MS) // 1000, sc.EVENT_GEN_AI_EVALUATION_RESULT),
        ((fact["start"] + 350 * MS) // 1000, sc.EVENT_GEN_AI_EVALUATION_RESULT),
        ((fact["start"] + 3 * 3600 * 1000 * MS) // 1000, sc.EVENT_GEN_AI_EVALUATION_RESULT)]
    assert {"key": sc.GEN_AI_EVALUATION_NAME, "type": "string", "value": "policy_compliance"} in events[2][2]
    assert any(f["key"] == "body" and "Where is my order?" in f["value"] for f in events[0][2])


def test_a_score_sent_twice_shows_once_as_genai_evaluations_full_counts_it():
    """The copies genai_evaluations_full leaves out (spanhouse.scores) are not shown as logs either, in
    the v1 and the v3 API: OpenLIT's log_score inside a span (a span event and the same log record at
    once: the span event stays), a retry with the same idempotency key, a record sent twice; the same
    feedback given again later stays."""
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.trace import NonRecordingSpan

    hour = 3600 * 10**9
    svc, spans, facts = _one_trace_with_logs("jaegerscores")
    try:
        fact = facts["traces"][0]
        start = fact["start"]
        chat = next(s for s in spans if s.name.startswith("chat"))

        def score(name: str, value, key: str = "") -> dict:
            attrs = {sc.GEN_AI_EVALUATION_NAME: name, sc.GEN_AI_EVALUATION_SCORE_VALUE: value}
            return {**attrs, sc.OPENLIT_SCORE_IDEMPOTENCY_KEY: key} if key else attrs

        sent = [(start + 305 * MS, score("relevance", 0.8)),  # the span event's log record (log_score)
                (start + hour, score("late_review", 0.3, "k2")), (start + 2 * hour, score("late_review", 0.5, "k2")),
                (start + hour, score("thumbs", 1)), (start + hour, score("thumbs", 1)),
                (start + hour, score("user_feedback", 1)), (start + 2 * hour, score("user_feedback", 1)),
                (start + 3 * hour, score("relevance", "0.8"))]
        provider = LoggerProvider(resource=Resource.create({sc.SERVICE_NAME: "support-copilot"}))
        provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=svc.http_url + "/v1/logs")))
        logger = provider.get_logger("tests.jaeger")
        for at, attrs in sent:
            logger.emit(timestamp=at, context=set_span_in_context(NonRecordingSpan(chat.context)),
                        event_name=sc.EVENT_GEN_AI_EVALUATION_RESULT, attributes=attrs)
        provider.shutdown()
        svc.wait_rows("SELECT 1 FROM genai_evaluations", len(sent) + 1)
        counted = svc.rows("SELECT intDiv(toUnixTimestamp64Nano(Timestamp), 1000), EvaluationName, ScoreValue "
                           "FROM genai_evaluations_full ORDER BY Timestamp, EvaluationName")
        base = f"http://127.0.0.1:{svc.service.host.extensions[ComponentID('jaeger_query')].server.port}"
        (trace,) = v1_ok({"base": base}, f"/api/traces/{fact['id']}")["data"]
        status, v3 = get(base, f"/api/v3/traces/{fact['id']}")
    finally:
        svc.stop()
    assert len(counted) == 6, counted
    chat_span = next(s for s in trace["spans"] if s["operationName"].startswith("chat"))
    shown = []
    for log in chat_span["logs"]:
        fields = {f["key"]: f["value"] for f in log["fields"]}
        if fields["event"] == sc.EVENT_GEN_AI_EVALUATION_RESULT:
            shown.append((log["timestamp"], fields[sc.GEN_AI_EVALUATION_NAME],
                           float(fields[sc.GEN_AI_EVALUATION_SCORE_VALUE])))
    assert sorted(shown) == sorted(counted)
    assert status == 200
    (v3_chat,) = [s for rs in v3["result"]["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]
                  if s["name"].startswith("chat")]
    assert sorted(int(e["timeUnixNano"]) // 1000 for e in v3_chat["events"]
                  if e["name"] == sc.EVENT_GEN_AI_EVALUATION_RESULT) == sorted(t for t, _, _ in counted)


def post(base: str, path: str, body: bytes) -> tuple[int, Any]:
    req = urllib.request.Request(base + path, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_v3_search_and_summaries_take_a_posted_query(jaeger):
    query = {"serviceName": "support-copilot", "operationName": "chat gpt-4o",
             "attributes": {sc.GEN_AI_REQUEST_MODEL: "gpt-4o"},
             "startTimeMin": rfc3339(T0 - 60 * 10**9), "startTimeMax": rfc3339(T0 + 600 * 10**9)}
    status, body = post(jaeger["base"], "/api/v3/traces", json.dumps({"query": query}).encode())
    assert status == 200, body
    found = {s["traceId"] for rs in body["result"]["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]}
    assert found == {jaeger["traces"][0]["id"], jaeger["traces"][2]["id"]}
    status, body = post(jaeger["base"], "/api/v3/trace-summaries", json.dumps({"query": query}).encode())
    assert status == 200, body
    newest, oldest = body["summaries"]
    assert [newest["traceId"], oldest["traceId"]] == [jaeger["traces"][2]["id"], jaeger["traces"][0]["id"]]
    assert (oldest["rootServiceName"], oldest["rootOperationName"]) == ("frontend", "POST /tickets")
    assert oldest["minStartTimeUnixNano"] == str(jaeger["traces"][0]["start"])
    assert oldest["maxEndTimeUnixNano"] == str(jaeger["traces"][0]["start"] + 2000 * MS)
    assert (oldest["spanCount"], oldest["errorSpanCount"], oldest["orphanSpanCount"]) == (3, 1, 0)
    assert oldest["services"] == [{"name": "frontend", "spanCount": 1, "errorSpanCount": 0},
                                  {"name": "support-copilot", "spanCount": 2, "errorSpanCount": 1}]
    status, body = get(jaeger["base"], "/api/v3/trace-summaries",
                       {f"query.{k}": v for k, v in query.items() if k != "attributes"})
    assert status == 200 and len(body["summaries"]) == 2
    status, body = post(jaeger["base"], "/api/v3/traces", b"{not json")
    assert status == 400 and "not JSON" in body["error"]["message"]
    status, body = get(jaeger["base"], "/api/v3/nothing")
    assert status == 404 and body["error"]["httpCode"] == 404


def test_a_span_shown_at_the_end_bound_is_inside_it(jaeger):
    fact = jaeger["traces"][0]
    chat_start_us = (fact["start"] + 5 * MS) // 1000
    found = search(jaeger, service="support-copilot", operation="chat gpt-4o",
                   start=chat_start_us, end=chat_start_us)
    assert ids(found) == [fact["id"]]


def test_a_span_stored_twice_is_shown_once():
    """A client that sends its request again (its exporter timed out although the first attempt was stored)
    has every span stored twice; the v1 trace and search, the v3 trace, search and summaries show each span
    once, as `spanhouse trace` does, and count it once."""
    db = unique_database("jaeger_copies")
    svc = start_service(service_config(db, extensions=EXTENSIONS), db)
    try:
        spans, facts = record(traces=1)
        for _ in range(2):
            exporter = OTLPSpanExporter(endpoint=svc.http_url + "/v1/traces")
            assert exporter.export(spans) is SpanExportResult.SUCCESS
            exporter.shutdown()
        svc.wait_rows("SELECT 1 FROM otel_traces", 2 * len(spans))
        fact = facts["traces"][0]
        base = {"base": f"http://127.0.0.1:{svc.extension('jaeger_query').server.port}"}
        (by_id,) = v1_ok(base, f"/api/traces/{fact['id']}")["data"]
        (found,) = search(base, service="support-copilot")
        status, v3 = get(base["base"], f"/api/v3/traces/{fact['id']}")
        assert status == 200, v3
        window = {"query.startTimeMin": rfc3339(T0 - 60 * 10**9), "query.startTimeMax": rfc3339(T0 + 600 * 10**9)}
        status, v3_found = get(base["base"], "/api/v3/traces", window)
        assert status == 200, v3_found
        status, summaries = get(base["base"], "/api/v3/trace-summaries", window)
        assert status == 200, summaries
    finally:
        svc.stop()
    want = sorted(format(s.context.span_id, "016x") for s in spans)
    assert sorted(s["spanID"] for s in by_id["spans"]) == want
    assert sorted(s["spanID"] for s in found["spans"]) == want
    for body in (v3, v3_found):
        assert sorted(s["spanId"] for rs in body["result"]["resourceSpans"] for ss in rs["scopeSpans"]
                      for s in ss["spans"]) == want
    (summary,) = summaries["summaries"]
    assert (summary["spanCount"], summary["errorSpanCount"]) == (len(spans), 1)
    assert sum(s["spanCount"] for s in summary["services"]) == len(spans)
