"""The clickhouse exporter's JSONColumns insert stores exactly what the reference path (trace_columns()
through clickhouse-connect's Native insert) stores, column for column, read back from ClickHouse."""

from __future__ import annotations

import pytest
from support import chdb_endpoint, unique_database

from spanhouse import semconv as sc
from spanhouse.batch import Event, Link, Resource, Scope, SpanBatch
from spanhouse.exporters.clickhouse import TRACE_COLUMNS, ClickHouseConfig, ClickHouseExporter, trace_columns
from spanhouse.exporters.clickhouse_encode import encode_columns


def _batch() -> SpanBatch:
    b = SpanBatch()
    b.resources = [Resource({sc.SERVICE_NAME: "svc-ä", "k.int": 7, "k.list": ["a", 1, True, 2.5, None]}),
                   Resource({})]
    b.scopes = [Scope("lib", "1.0"), Scope("", "")]
    tricky = 'quote " backslash \\ newline \n tab \t nul \x00 emoji 🚀 cjk 漢字 ' + "x" * 3000
    b.append(resource=0, scope=0, trace_id="0af7651916cd43dd8448eb211c80319c", span_id="b7ad6b7169203331",
             name="chat gpt-4o", start_time_unix_nano=1_767_225_600_123_456_789,
             end_time_unix_nano=1_767_225_601_000_000_001, kind=3, status_code=2, status_message=tricky,
             trace_state="congo=t61rcWkgMzE",
             attributes={"s": tricky, "i": -(2**63), "u": 2**63 - 1, "f": 0.1, "f2": 1e-7, "f3": 1e21, "f4": 3.0,
                         "nan": float("nan"), "inf": float("-inf"), "b": True, "bytes": b"\x00\xffab",
                         "arr": ["x", "y"], "kv": {"z": 1, "a": {"n": [1.5, "q"]}}, "none": None, "": "empty key"},
             events=[Event(1_767_225_600_500_000_000, sc.EVENT_GEN_AI_EVALUATION_RESULT, {"score": 0.5, "label": "ok"}),
                     Event(0, "", {})],
             links=[Link("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174", "a=b", {"l": 1}, 1)])
    b.append(resource=1, scope=1, trace_id="5b8efff798038103d269b633813fc60c", span_id="eee19b7ec3c1b174",
             parent_span_id="b7ad6b7169203331", name="", start_time_unix_nano=5, end_time_unix_nano=3,
             kind=9, status_code=7)
    for i in range(300):
        b.append(resource=i % 2, scope=i % 2, trace_id=f"{i + 1:032x}", span_id=f"{i + 1:016x}", name=f"span {i % 7}",
                 start_time_unix_nano=1_767_225_600_000_000_000 + i,
                 end_time_unix_nano=1_767_225_600_000_000_000 + 2 * i,
                 attributes={"n": i, "s": "v" * (i % 5)})
    return b


@pytest.fixture
def exporter():
    exp = ClickHouseExporter(ClickHouseConfig(endpoint=chdb_endpoint(), database=unique_database("enc")))
    exp.start(None)
    yield exp
    exp.shutdown()


def _rows(exp: ClickHouseExporter, table: str) -> list[tuple]:
    cols = ", ".join(f"`{c}`" for c in TRACE_COLUMNS)
    return exp.client.query(f"SELECT {cols} FROM {table} ORDER BY SpanId, Timestamp").result_rows


def test_json_columns_insert_stores_the_same_rows_as_the_native_insert(exporter):
    batch = _batch()
    exp = exporter
    reference = f"`{exp.config.database}`.`reference`"
    exp.client.command(f"CREATE TABLE {reference} AS {exp.table}")
    exp.client.insert(reference, trace_columns(batch), column_names=list(TRACE_COLUMNS), column_oriented=True)

    body = encode_columns(TRACE_COLUMNS, trace_columns(batch))
    assert body is not None
    exp.push(batch)

    got, want = _rows(exp, exp.table), _rows(exp, reference)
    assert len(got) == len(batch) == len(want)
    for g, w in zip(got, want):
        assert g == w
    # the materialized views saw the encoded insert as well
    lookup = f"`{exp.config.database}`.`otel_traces_trace_id_ts`"
    assert exp.client.query(f"SELECT count() FROM {lookup}").result_rows[0][0] > 0


def test_values_json_cannot_carry_use_the_native_path(exporter):
    batch = _batch()
    batch.attributes[0]["bad"] = "lone surrogate \ud800"
    assert encode_columns(TRACE_COLUMNS, trace_columns(batch)) is None
    early = _batch()
    early.start_time_unix_nano[1] = -5
    assert encode_columns(TRACE_COLUMNS, trace_columns(early)) is None
    exporter.push(early)
    rows = exporter.client.query(f"SELECT toUnixTimestamp64Nano(Timestamp) FROM {exporter.table} "
                                 "WHERE SpanId = 'eee19b7ec3c1b174'").result_rows
    assert rows == [(-5,)]
