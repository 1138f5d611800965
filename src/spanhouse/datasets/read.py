"""Reading datasets back from `genai_dataset_examples_current`: the list, and one dataset's examples."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from spanhouse.datasets.examples import Example
from spanhouse.reader import Reader

PAGE = 1000


@dataclass(frozen=True)
class DatasetSummary:
    tenant: str
    name: str
    examples: int
    with_expected: int
    last_change: datetime


def datasets(reader: Reader) -> list[DatasetSummary]:
    """Every dataset with at least one example, by name then tenant."""
    rows = reader.query(
        f"SELECT TenantId, DatasetName, count(), countIf(ExpectedOutput != ''), max(Timestamp) "
        f"FROM {reader.tables['genai_dataset_examples_current']} "
        "GROUP BY TenantId, DatasetName ORDER BY DatasetName, TenantId").result_rows
    return [DatasetSummary(*row) for row in rows]


def example_ids(reader: Reader, dataset: str, tenant: str | None = None) -> set[str]:
    sql = (f"SELECT ExampleId FROM {reader.tables['genai_dataset_examples_current']} WHERE DatasetName = {{d:String}}"
           + (" AND TenantId = {t:String}" if tenant is not None else ""))
    return {r[0] for r in reader.query(sql, {"d": dataset, "t": tenant or ""}).result_rows}


def tenants_of(reader: Reader, dataset: str) -> list[str]:
    return [r[0] for r in reader.query(
        f"SELECT DISTINCT TenantId FROM {reader.tables['genai_dataset_examples_current']} "
        "WHERE DatasetName = {d:String} ORDER BY TenantId", {"d": dataset}).result_rows]


def examples(reader: Reader, dataset: str, tenant: str) -> Iterator[tuple[Example, datetime]]:
    """The dataset's examples (of one tenant) in id order, with the time of their newest record, read in
    pages so that a large dataset fits the sql_query endpoint's result limit."""
    after = ""
    while True:
        rows = reader.query(
            "SELECT ExampleId, Input, ExpectedOutput, Metadata, SourceTraceId, SourceSpanId, Timestamp "
            f"FROM {reader.tables['genai_dataset_examples_current']} WHERE DatasetName = {{d:String}} "
            "AND TenantId = {t:String} AND ExampleId > {after:String} ORDER BY ExampleId LIMIT {n:UInt32}",
            {"d": dataset, "t": tenant, "after": after, "n": PAGE}).result_rows
        for example_id, input_, expected, metadata, trace_id, span_id, when in rows:
            yield Example(example_id, input_, expected, dict(metadata), trace_id, span_id), when
        if len(rows) < PAGE:
            return
        after = rows[-1][0]
