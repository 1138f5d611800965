"""The exporter helper: queues (memory and file), retries, tokens, replay; and ClickHouse deduplication."""

from __future__ import annotations

import logging
import os
import threading
import time

import pytest
from support import chdb_endpoint, unique_database

from spanhouse.batch import Event, Resource, Scope, SpanBatch
from spanhouse.config import Duration
from spanhouse.errors import Overloaded, PermanentError, RetryableError
from spanhouse.exporters.clickhouse import ClickHouseConfig, ClickHouseExporter
from spanhouse.exporters.filequeue import ENCODED, ITEM, QueueCorrupt, decode_batch
from spanhouse.exporters.helper import (
    ExporterHelperSettings,
    HelperExporter,
    Pusher,
    QueueBatchSettings,
    QueueSettings,
    QueueStorage,
    RetrySettings,
    delivery_token,
)
from spanhouse.exporters.queue import Encoded, MemoryQueue

FAST = RetrySettings(initial_interval=Duration(0.01), max_interval=Duration(0.05),
                     max_elapsed_time=Duration(0))


def make_batch(n: int, first: int = 0) -> SpanBatch:
    b = SpanBatch()
    b.resources.append(Resource({"service.name": "t"}))
    b.scopes.append(Scope("s"))
    now = time.time_ns()
    for i in range(first, first + n):
        b.append(resource=0, scope=0, trace_id=f"{i + 1:032x}", span_id=f"{i + 1:016x}", name=f"span {i}",
                 start_time_unix_nano=now, end_time_unix_nano=now + 1)
    return b


class Sink(Pusher):
    """Records what it is given; fails with `errors` (consumed one per push) first."""

    def __init__(self, errors: list[Exception] | None = None, block: threading.Event | None = None):
        self.errors = list(errors or [])
        self.block = block
        self.pushes: list[tuple[list[str], str | None]] = []
        self.lock = threading.Lock()

    def push(self, batch) -> None:
        if self.block is not None:
            self.block.wait(10)
        with self.lock:
            self.pushes.append((list(batch.span_id), delivery_token()))
            if self.errors:
                raise self.errors.pop(0)

    def delivered(self) -> list[str]:
        """Span ids of the last push of each token (the one that succeeded)."""
        last: dict[str | None, list[str]] = {}
        for ids, token in self.pushes:
            last[token] = ids
        return sorted(i for ids in last.values() for i in ids)


def helper(pusher: Pusher, tmp_path=None, **queue) -> HelperExporter:
    q = QueueSettings(**queue) if queue else QueueSettings()
    if q.storage is QueueStorage.FILE and not q.directory:
        q = QueueSettings(**{**queue, "directory": str(tmp_path / "queue")})
    h = HelperExporter(pusher, ExporterHelperSettings(sending_queue=q, retry_on_failure=FAST), "test")
    h.start(None)
    return h


def wait_for(fn, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not fn():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


# --- without a queue ---------------------------------------------------------------------


def test_synchronous_push_retries_with_one_token_and_drops_permanent_errors_at_once():
    sink = Sink([RetryableError("down"), RetryableError("still down")])
    h = helper(sink)
    h.consume(make_batch(3))
    assert len(sink.pushes) == 3 and len({t for _, t in sink.pushes}) == 1 and sink.pushes[0][1]
    sink.errors = [PermanentError("bad data")]
    with pytest.raises(PermanentError):
        h.consume(make_batch(1))
    assert len(sink.pushes) == 4  # not retried
    h.shutdown()


def test_synchronous_push_gives_up_after_max_elapsed_time():
    sink = Sink([RetryableError("down", retry_after=0.3)] * 10)
    h = HelperExporter(sink, ExporterHelperSettings(retry_on_failure=RetrySettings(
        initial_interval=Duration(0.01), max_interval=Duration(0.05), max_elapsed_time=Duration(0.5))), "t")
    h.start(None)
    with pytest.raises(RetryableError):  # ignoring max_elapsed_time, the 11th push would succeed
        h.consume(make_batch(1))
    assert 1 < len(sink.pushes) <= 3  # the server's retry_after (0.3s) was honoured
    h.shutdown()


# --- memory queue --------------------------------------------------------------------------


def test_memory_queue_answers_at_once_delivers_in_background_and_refuses_when_full():
    gate = threading.Event()
    sink = Sink(block=gate)
    h = helper(sink, enabled=True, queue_size=3, num_consumers=1)
    for i in range(3):  # returns at once although nothing can be delivered (the sink is blocked)
        h.consume(make_batch(1, first=i))
    with pytest.raises(Overloaded) as err:  # queue_size counts batches accepted and not yet delivered
        h.consume(make_batch(1, first=3))
    assert err.value.retry_after and "is full" in str(err.value)
    gate.set()
    wait_for(lambda: len(h.queue) == 0)
    assert sink.delivered() == [f"{i + 1:016x}" for i in range(3)]
    h.shutdown()


def test_memory_queue_drains_at_shutdown():
    sink = Sink([RetryableError("slow start")] * 3)
    h = helper(sink, enabled=True, num_consumers=2)
    for i in range(20):
        h.consume(make_batch(5, first=5 * i))
    h.shutdown(timeout=10)
    assert sink.delivered() == sorted(f"{i + 1:016x}" for i in range(100))


def test_queue_batching_merges_into_one_push_and_splits_at_max_size(tmp_path):
    sink = Sink()
    h = helper(sink, tmp_path, storage=QueueStorage.FILE, num_consumers=1,
               batch=QueueBatchSettings(min_size=10_000, max_size=25, flush_timeout=Duration(0.3)))
    for i in range(6):
        h.consume(make_batch(10, first=10 * i))
    h.consume(make_batch(60, first=100))
    wait_for(lambda: len(h.queue) == 0)
    sizes = [len(ids) for ids, _ in sink.pushes]
    tokens = [t for _, t in sink.pushes]
    assert sizes == [20, 20, 20, 25, 25, 10]  # merged up to max_size; the oversized request is split
    assert len(set(tokens)) == 6 and [t.rsplit("/", 1)[1] for t in tokens[3:]] == ["0", "1", "2"]
    h.shutdown()


# --- file queue -----------------------------------------------------------------------------


def test_file_queue_item_is_on_disk_before_put_returns(tmp_path):
    gate = threading.Event()
    h = helper(Sink(block=gate), tmp_path, storage=QueueStorage.FILE, num_consumers=1)
    h.consume(make_batch(7))
    segments = [p for p in (tmp_path / "queue").iterdir() if p.suffix == ".log"]
    assert sum(p.stat().st_size for p in segments) > 7 * 16
    gate.set()
    h.shutdown()


def test_file_queue_replays_after_restart_with_the_same_tokens_and_groups(tmp_path):
    down = Sink([RetryableError("ClickHouse down")] * 10_000)
    h = helper(down, tmp_path, storage=QueueStorage.FILE, num_consumers=2,
               batch=QueueBatchSettings(min_size=30, flush_timeout=Duration(0.05)))
    for i in range(9):
        h.consume(make_batch(10, first=10 * i))
    wait_for(lambda: len(down.pushes) >= 6)
    h.shutdown(timeout=2)
    tried = {t for _, t in down.pushes}
    assert len(h.queue) == 9  # nothing delivered, nothing lost

    up = Sink()
    h2 = helper(up, tmp_path, storage=QueueStorage.FILE, num_consumers=2,
                batch=QueueBatchSettings(min_size=30, flush_timeout=Duration(0.05)))
    assert h2.queue.replayed == 9
    wait_for(lambda: len(h2.queue) == 0)
    assert up.delivered() == sorted(f"{i + 1:016x}" for i in range(90))
    # a group formed before the restart is delivered again as the same group, with the same token
    assert tried & {t for _, t in up.pushes}
    h2.shutdown()
    # everything was acknowledged: a third start has nothing to replay and old segments are gone
    h3 = helper(Sink(), tmp_path, storage=QueueStorage.FILE)
    assert h3.queue.replayed == 0
    assert len([p for p in (tmp_path / "queue").iterdir() if p.suffix == ".log"]) == 1
    h3.shutdown()


def test_file_queue_cuts_a_torn_record_and_keeps_the_rest(tmp_path):
    h = helper(Sink([RetryableError("down")] * 10_000), tmp_path, storage=QueueStorage.FILE, num_consumers=1)
    for i in range(3):
        h.consume(make_batch(2, first=2 * i))
    h.shutdown(timeout=1)
    newest = max(p for p in (tmp_path / "queue").iterdir() if p.suffix == ".log")
    with open(newest, "ab") as f:
        f.write(b"\x40\x00\x00\x00garbage")  # a write interrupted by a crash
    sink = Sink()
    h2 = helper(sink, tmp_path, storage=QueueStorage.FILE)
    wait_for(lambda: len(h2.queue) == 0)
    assert h2.queue.replayed == 3 and len(sink.delivered()) == 6
    h2.shutdown()


def test_file_queue_refuses_a_second_process_and_respects_its_disk_budget(tmp_path):
    from spanhouse.errors import SpanhouseError

    gate = threading.Event()
    h = helper(Sink(block=gate), tmp_path, storage=QueueStorage.FILE, num_consumers=1, max_disk_mib=1)
    with pytest.raises(SpanhouseError, match="in use by another process"):
        helper(Sink(), tmp_path, storage=QueueStorage.FILE)
    big = make_batch(2000)
    with pytest.raises(Overloaded, match="disk budget"):
        for _ in range(50):
            h.consume(big)
    gate.set()
    h.shutdown()


def test_file_queue_requeues_instead_of_dropping_after_max_elapsed_time(tmp_path):
    sink = Sink([RetryableError("down")] * 8)
    q = QueueSettings(storage=QueueStorage.FILE, directory=str(tmp_path / "q"), num_consumers=1)
    h = HelperExporter(sink, ExporterHelperSettings(sending_queue=q, retry_on_failure=RetrySettings(
        initial_interval=Duration(0.01), max_interval=Duration(0.02), max_elapsed_time=Duration(0.03))), "t")
    h.start(None)
    h.consume(make_batch(4))
    wait_for(lambda: len(h.queue) == 0)
    assert sink.delivered() == sorted(f"{i + 1:016x}" for i in range(4)) and h.stats["lost"] == 0
    h.shutdown()


def test_a_permanent_error_in_a_merged_batch_drops_only_the_bad_request(tmp_path):
    class Picky(Sink):
        def push(self, batch) -> None:
            with self.lock:
                self.pushes.append((list(batch.span_id), delivery_token()))
            if "bad" in batch.name:
                raise PermanentError("ClickHouse refused the data")

    sink = Picky()
    h = helper(sink, tmp_path, storage=QueueStorage.FILE, num_consumers=1,
               batch=QueueBatchSettings(min_size=1000, flush_timeout=Duration(0.2)))
    good1, bad, good2 = make_batch(2, 0), make_batch(2, 2), make_batch(2, 4)
    bad.name[0] = "bad"
    for b in (good1, bad, good2):
        h.consume(b)
    wait_for(lambda: len(h.queue) == 0)
    ok = sorted(i for ids, t in sink.pushes if "#" in (t or "") and len(ids) == 2 and ids[0] != f"{3:016x}"
                for i in ids)
    assert ok == sorted(good1.span_id + good2.span_id)
    assert h.stats["refused"] == 2  # the merged push and the bad request alone
    h.shutdown()


class EncodingSink(Sink):
    """A pusher that encodes batches for the queue (span ids as text), except batches named `plain…`."""

    def encode_for_queue(self, batch):
        if batch.name[0].startswith("plain"):
            return None
        return Encoded((",".join(batch.span_id).encode(),), len(batch), "ids")

    def push(self, batch) -> None:
        if isinstance(batch, Encoded):
            assert batch.format == "ids"
            ids = [i for p in batch.parts for i in p.decode().split(",")]
            assert len(ids) == len(batch)
            with self.lock:
                self.pushes.append((ids, delivery_token()))
                if self.errors:
                    raise self.errors.pop(0)
            return
        super().push(batch)


def _record_kinds(directory) -> list[int]:
    """The kinds of the item records in a file queue's segments, in order."""
    from spanhouse.exporters.filequeue import _HEADER

    kinds = []
    for seg in sorted(p for p in directory.iterdir() if p.suffix == ".log"):
        data, pos = seg.read_bytes(), 0
        while pos < len(data):
            length, _, kind = _HEADER.unpack_from(data, pos)
            kinds.append(kind)
            pos += _HEADER.size + length
    return [k for k in kinds if k in (ITEM, ENCODED)]


def test_encoded_items_are_stored_as_bytes_merged_only_with_each_other_and_replayed(tmp_path):
    down = EncodingSink([RetryableError("down")] * 10_000)
    settings = dict(storage=QueueStorage.FILE, num_consumers=1,
                    batch=QueueBatchSettings(min_size=1000, flush_timeout=Duration(0.05)))
    h = helper(down, tmp_path, **settings)
    batches = [make_batch(3, first=3 * i) for i in range(6)]
    for b in batches[2:4]:
        b.name[0] = "plain"
    for b in batches:
        h.consume(b)
    wait_for(lambda: len(down.pushes) >= 3)
    h.shutdown(timeout=2)
    assert _record_kinds(tmp_path / "queue") == [ENCODED, ENCODED, ITEM, ITEM, ENCODED, ENCODED]
    # merged units never mix the two forms: every push held either only encoded or only plain batches
    plain = {i for b in batches[2:4] for i in b.span_id}
    assert all(set(ids) <= plain or not set(ids) & plain for ids, _ in down.pushes)

    up = EncodingSink()
    h2 = helper(up, tmp_path, **settings)
    assert h2.queue.replayed == 6
    wait_for(lambda: len(h2.queue) == 0)
    assert up.delivered() == sorted(i for b in batches for i in b.span_id)
    assert {t for _, t in down.pushes} & {t for _, t in up.pushes}  # replayed groups keep their tokens
    h2.shutdown()


def test_an_encoded_batch_over_max_size_is_queued_as_a_batch_and_split():
    sink = EncodingSink()
    h = helper(sink, enabled=True, num_consumers=1,
               batch=QueueBatchSettings(min_size=10, max_size=10, flush_timeout=Duration(0.05)))
    h.consume(make_batch(25))
    h.consume(make_batch(10, first=100))
    wait_for(lambda: len(h.queue) == 0)
    assert [len(ids) for ids, _ in sink.pushes] == [10, 10, 5, 10]
    assert isinstance(h.queue, MemoryQueue)
    h.shutdown()


def test_queued_records_refuse_foreign_classes():
    import pickle

    with pytest.raises(QueueCorrupt, match="not a batch type"):
        decode_batch(pickle.dumps(os.system))


def test_queue_and_batch_settings_are_validated():
    from spanhouse.config import parse_config

    cfg = {"receivers": {"otlp": {"protocols": {"http": {}}}}, "exporters": {"clickhouse": {"sending_queue": {
        "storage": "file", "num_consumers": 0, "queue_size": 0, "max_disk_mib": 0,
        "batch": {"min_size": 10, "max_size": 5, "flush_timeout": "0"}}}},
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["clickhouse"]}}}}
    from spanhouse.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        parse_config(cfg)
    text = "\n".join(err.value.problems)
    for path in ("sending_queue::num_consumers", "sending_queue::queue_size", "sending_queue::directory",
                 "sending_queue::max_disk_mib", "batch::max_size", "batch::flush_timeout"):
        assert path in text


# --- ClickHouse deduplication ----------------------------------------------------------------


def push_with_tokens(exporter, batch, tokens: tuple[str, ...]) -> None:
    """Push `batch` once per delivery token, as retries of one delivery (same token) or new ones would."""
    from spanhouse.exporters.helper import _token

    for token in tokens:
        reset = _token.set(token)
        try:
            exporter.push(batch)
        finally:
            _token.reset(reset)


def test_clickhouse_stores_a_batch_once_per_token_in_every_table():
    from spanhouse import semconv as sc

    db = unique_database("dedup")
    exporter = ClickHouseExporter(ClickHouseConfig(endpoint=chdb_endpoint(), database=db))
    exporter.start(None)
    batch = make_batch(3)
    for attrs in batch.attributes:
        attrs[sc.GEN_AI_OPERATION_NAME] = "chat"
    try:
        push_with_tokens(exporter, batch, ("a", "a", "b"))
        client = exporter.client
        # "a" twice is stored once; "b" is a different delivery of the same content and is kept
        assert client.query(f"SELECT count() FROM `{db}`.otel_traces").result_rows == [(6,)]
        assert client.query(f"SELECT count() FROM `{db}`.genai_spans").result_rows == [(6,)]
        assert client.query(f"SELECT countMerge(Spans) FROM `{db}`.genai_rollup_hourly").result_rows == [(6,)]
    finally:
        exporter.shutdown()


def test_log_records_are_stored_once_per_token():
    from spanhouse.logbatch import LogBatch
    from spanhouse.otlp.decode_logs import decode_logs_json

    db = unique_database("dedup_logs")
    exporter = ClickHouseExporter(ClickHouseConfig(endpoint=chdb_endpoint(), database=db), "logs")
    exporter.start(None)
    body = (b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": "1764000000000000000", '
            b'"body": {"stringValue": "hello"}}]}]}]}')
    batch = decode_logs_json(body).batch
    assert isinstance(batch, LogBatch)
    try:
        push_with_tokens(exporter, batch, ("a", "a"))
        assert exporter.client.query(f"SELECT count() FROM `{db}`.otel_logs").result_rows == [(1,)]
    finally:
        exporter.shutdown()


def test_a_value_the_client_cannot_encode_is_a_permanent_error_not_a_retry():
    """A record the decoder let through by mistake must not hold a queue forever: clickhouse-connect
    wraps its own encoding failures (here a time past 2^64) in DataError, which is bad data."""
    from spanhouse.otlp.decode_logs import decode_logs_json

    db = unique_database("data_error")
    exporter = ClickHouseExporter(ClickHouseConfig(endpoint=chdb_endpoint(), database=db), "logs")
    exporter.start(None)
    body = b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "x"}}]}]}]}'
    batch = decode_logs_json(body).batch
    batch.time_unix_nano[0] = 2**64 - 1
    try:
        with pytest.raises(PermanentError, match="cannot be encoded"):
            exporter.push(batch)
    finally:
        exporter.shutdown()


def test_clickhouse_inserts_merged_encoded_batches_as_the_reference_path_and_once_per_token():
    from spanhouse import semconv as sc

    def batch(first: int) -> SpanBatch:
        b = make_batch(3, first)
        for i, attrs in enumerate(b.attributes):
            attrs.update({sc.GEN_AI_OPERATION_NAME: "chat", "n": first + i, "s": "é \u2028 \"q\"", "f": 0.5})
        b.events[1].append(Event(b.start_time_unix_nano[1], "e", {"k": [1, 2]}))
        b.status_message[2] = "boom"
        return b

    db_ref, db_enc = unique_database("ref"), unique_database("enc")
    ref = ClickHouseExporter(ClickHouseConfig(endpoint=chdb_endpoint(), database=db_ref))
    enc = ClickHouseExporter(ClickHouseConfig(endpoint=chdb_endpoint(), database=db_enc))
    ref.start(None)
    enc.start(None)
    batches = [batch(0), batch(3), batch(6)]
    encoded = [enc.encode_for_queue(b) for b in batches]
    assert all(isinstance(e, Encoded) and len(e) == 3 for e in encoded)
    merged = Encoded.concat(encoded)
    try:
        ref.push(SpanBatch.concat(batches))
        push_with_tokens(enc, merged, ("a", "a", "b"))
        client = enc.client
        columns = "Timestamp, TraceId, SpanId, SpanName, SpanAttributes, Events.Attributes, StatusMessage"
        rows = {db: client.query(f"SELECT {columns} FROM `{db}`.otel_traces ORDER BY SpanId, Timestamp").result_rows
                for db in (db_ref, db_enc)}
        assert len(rows[db_ref]) == 9 and rows[db_enc] == [r for r in rows[db_ref] for _ in (0, 1)]
        assert client.query(f"SELECT count() FROM `{db_enc}`.genai_spans").result_rows == [(18,)]
        with pytest.raises(PermanentError, match="cannot be inserted"):
            enc.push(Encoded((b"{}",), 1, "something else"))
    finally:
        ref.shutdown()
        enc.shutdown()


def test_a_clickhouse_server_down_at_start_is_reported_with_what_happens_to_data(caplog):
    from support import free_port

    port = free_port()
    for queue, expected in (({"enabled": False}, "without a sending_queue, exports fail (clients retry)"),
                            ({"enabled": True}, "spans wait in the sending queue until it answers")):
        exporter = ClickHouseExporter(ClickHouseConfig(endpoint=f"http://127.0.0.1:{port}",
                                                       sending_queue=QueueSettings(**queue)))
        caplog.clear()
        exporter.start(None)
        exporter.shutdown()
        assert expected in caplog.text


def test_spans_older_than_the_retention_are_stored_with_a_warning(caplog):
    from spanhouse.config import Duration

    db = unique_database("ttl_warning")
    exporter = ClickHouseExporter(ClickHouseConfig(endpoint=chdb_endpoint(), database=db, ttl=Duration(3600)))
    exporter.start(None)
    try:
        batch = make_batch(3)
        batch.start_time_unix_nano[:] = [time.time_ns() - 2 * 86400 * 10**9] * 2 + [time.time_ns()]
        batch.end_time_unix_nano[:] = [t + 1 for t in batch.start_time_unix_nano]
        exporter.push(batch)
        assert "2 span(s) started before the store's retention (ttl 1h)" in caplog.text
        caplog.clear()
        exporter.push(make_batch(2, 3))  # recent spans: nothing to say
        assert "retention" not in caplog.text
    finally:
        exporter.shutdown()


# --- file queue: tokens across restarts, replay, damage, budget, a queue left behind ----------


def test_file_queue_never_hands_out_a_token_twice_across_restarts(tmp_path):
    """ClickHouse drops an insert whose token it has seen: a reused token loses acknowledged data."""
    first = Sink()
    h = helper(first, tmp_path, storage=QueueStorage.FILE)
    h.consume(make_batch(3))
    wait_for(lambda: len(h.queue) == 0)
    h.shutdown()
    helper(Sink(), tmp_path, storage=QueueStorage.FILE).shutdown()  # a start with no traffic
    later = Sink()
    h3 = helper(later, tmp_path, storage=QueueStorage.FILE)
    h3.consume(make_batch(3, first=3))
    wait_for(lambda: len(h3.queue) == 0)
    h3.shutdown()
    assert {t for _, t in first.pushes}.isdisjoint({t for _, t in later.pushes})


def test_a_queue_without_sequence_records_does_not_reuse_tokens(tmp_path):
    """Versions before SEQ records left queue directories whose numbering is unknown: emptied by an idle
    restart (an empty segment, the queue id kept), the next start must not count from 1 again."""
    first = Sink()
    h = helper(first, tmp_path, storage=QueueStorage.FILE)
    h.consume(make_batch(3))
    wait_for(lambda: len(h.queue) == 0)
    h.shutdown()
    queue = tmp_path / "queue"
    for segment in queue.glob("*.log"):
        segment.unlink()
    (queue / "000000000009.log").write_bytes(b"")  # what an older version's idle restart leaves
    later = Sink()
    h2 = helper(later, tmp_path, storage=QueueStorage.FILE)
    h2.consume(make_batch(3, first=3))
    wait_for(lambda: len(h2.queue) == 0)
    h2.shutdown()
    assert later.pushes and {t for _, t in first.pushes}.isdisjoint({t for _, t in later.pushes})


def test_a_stop_says_how_many_batches_stay_in_the_file_queue(tmp_path, caplog):
    """What an operator checks before a downgrade or moving the store: whether anything is still queued."""
    h = helper(Sink([RetryableError("down")] * 10_000), tmp_path, storage=QueueStorage.FILE, num_consumers=1)
    for i in range(2):
        h.consume(make_batch(2, first=2 * i))
    with caplog.at_level("INFO", logger="spanhouse.exporters.helper"):
        h.shutdown(timeout=1)
    assert "2 batch(es) stay in the sending queue" in caplog.text
    caplog.clear()
    h2 = helper(Sink(), tmp_path, storage=QueueStorage.FILE)
    wait_for(lambda: len(h2.queue) == 0)
    with caplog.at_level("INFO", logger="spanhouse.exporters.helper"):
        h2.shutdown()
    assert "stay in the sending queue" not in caplog.text


def test_replayed_items_are_delivered_alone_with_the_token_they_had(tmp_path):
    """An item may have been delivered alone just before a crash (its acknowledgement not yet written):
    merged with others after the restart, it would be stored again under a new token."""
    down = Sink([RetryableError("down")] * 10_000)
    h = helper(down, tmp_path, storage=QueueStorage.FILE, num_consumers=3)
    for i in range(3):
        h.consume(make_batch(2, first=2 * i))
    wait_for(lambda: len({t for _, t in down.pushes}) == 3)
    h.shutdown(timeout=1)
    tokens = {tuple(ids): t for ids, t in down.pushes}
    up = Sink()
    h2 = helper(up, tmp_path, storage=QueueStorage.FILE, num_consumers=1,
                batch=QueueBatchSettings(min_size=1000, flush_timeout=Duration(0.05)))
    wait_for(lambda: len(h2.queue) == 0)
    h2.shutdown()
    assert {tuple(ids): t for ids, t in up.pushes} == tokens


def _records(path) -> list[tuple[int, int]]:
    """(offset, length) of each record of a queue segment."""
    import struct

    data, out, pos = path.read_bytes(), [], 0
    while pos < len(data):
        (length,) = struct.unpack_from("<I", data, pos)
        out.append((pos, 9 + length))
        pos += 9 + length
    return out


def test_a_damaged_record_inside_the_queue_loses_only_itself_and_is_reported(tmp_path, caplog):
    h = helper(Sink([RetryableError("down")] * 10_000), tmp_path, storage=QueueStorage.FILE, num_consumers=1)
    for i in range(5):
        h.consume(make_batch(2, first=2 * i))
    h.shutdown(timeout=1)
    newest = max(p for p in (tmp_path / "queue").iterdir() if p.suffix == ".log")
    items = [r for r in _records(newest) if newest.read_bytes()[r[0] + 8] in (ITEM, ENCODED)]
    offset, length = items[1]
    data = bytearray(newest.read_bytes())
    data[offset + length - 3] ^= 0xFF  # one flipped bit in the second batch's payload
    newest.write_bytes(bytes(data))
    sink = Sink()
    with caplog.at_level("ERROR"):
        h2 = helper(sink, tmp_path, storage=QueueStorage.FILE)
    wait_for(lambda: len(h2.queue) == 0)
    h2.shutdown()
    assert h2.queue.replayed == 4 and len(sink.delivered()) == 8
    assert "1 damaged record(s)" in caplog.text and "is lost" in caplog.text


def test_the_disk_budget_counts_what_is_not_delivered_yet(tmp_path):
    """Delivered records stay in the current segment file until it is rotated; they must not count."""
    sink = Sink()
    h = helper(sink, tmp_path, storage=QueueStorage.FILE, num_consumers=1, max_disk_mib=1)
    batch = make_batch(500)
    for _ in range(40):  # several times the budget, one request at a time
        h.consume(batch)
        wait_for(lambda: len(h.queue) == 0)
    h.shutdown()
    assert len(sink.pushes) == 40


def test_a_file_queue_left_with_undelivered_batches_is_not_silently_abandoned(tmp_path):
    from spanhouse.errors import SpanhouseError

    h = helper(Sink([RetryableError("down")] * 10_000), tmp_path, storage=QueueStorage.FILE, num_consumers=1)
    h.consume(make_batch(3))
    h.shutdown(timeout=1)
    directory = str(tmp_path / "queue")
    with pytest.raises(SpanhouseError, match="still holds 1 acknowledged batch"):
        helper(Sink(), tmp_path, storage=QueueStorage.MEMORY, directory=directory, enabled=True)
    sink = Sink()
    h2 = helper(sink, tmp_path, storage=QueueStorage.FILE)  # delivered by the file queue as promised
    wait_for(lambda: len(h2.queue) == 0)
    h2.shutdown()
    assert len(sink.delivered()) == 3
    helper(Sink(), tmp_path, storage=QueueStorage.MEMORY, directory=directory, enabled=True).shutdown()


class StoreSink(Sink):
    """A sink with local state, as the clickhouse exporter on an embedded store has."""

    def __init__(self, state, errors=None):
        super().__init__(errors)
        self.state = str(state)

    def state_directory(self) -> str:
        return self.state


def test_a_config_without_the_queue_section_cannot_abandon_its_file_queue_either(tmp_path):
    """Deleting the whole sending_queue section (or its directory line) with batches still queued is
    caught through the store's record of the queue that fed it."""
    from spanhouse.errors import SpanhouseError

    store = tmp_path / "store"
    h = helper(StoreSink(store, [RetryableError("down")] * 10_000), tmp_path, storage=QueueStorage.FILE,
               num_consumers=1)
    h.consume(make_batch(3))
    h.shutdown(timeout=1)
    for queue in ({}, {"enabled": False}, {"storage": QueueStorage.MEMORY}):
        with pytest.raises(SpanhouseError, match="still holds 1 acknowledged batch.*section or directory"):
            helper(StoreSink(store), **queue)
    sink = StoreSink(store)
    h2 = helper(sink, tmp_path, storage=QueueStorage.FILE)
    wait_for(lambda: len(h2.queue) == 0)
    h2.shutdown()
    assert len(sink.delivered()) == 3
    helper(StoreSink(store), enabled=False).shutdown()  # delivered: leaving it now is fine
    helper(StoreSink(store)).shutdown()


def test_a_longer_ttl_lengthens_an_existing_store_and_nothing_is_ever_shortened_on_its_own(caplog, tmp_path):
    """A table's TTL follows a longer `ttl` at the next start, and `ttl: 0` (keep everything) removes it.
    A shorter one is left alone and logged with the statement to run: a config change never deletes
    stored rows by itself."""
    from spanhouse.config import Duration
    from spanhouse.store import connect

    db = unique_database("ttl_change")

    def start(ttl_seconds: int) -> dict[str, str]:
        exporter = ClickHouseExporter(ClickHouseConfig(endpoint=chdb_endpoint(), database=db,
                                                       ttl=Duration(ttl_seconds)))
        exporter.start(None)
        exporter.push(make_batch(1))
        exporter.shutdown()
        client = connect(exporter.config)
        try:
            rows = client.query("SELECT name, engine_full FROM system.tables WHERE database = {db:String} "
                                "AND engine LIKE '%MergeTree'", parameters={"db": db}).result_rows
        finally:
            client.close()
        tables = dict(rows)
        # curated dataset examples are kept until deleted, whatever the ttl
        assert " TTL " not in tables.pop("genai_dataset_examples")
        return tables

    first = start(30 * 86400)
    assert all("toIntervalDay(30)" in e for e in first.values()) and len(first) == 8
    caplog.clear()
    longer = start(90 * 86400)
    assert all("toIntervalDay(90)" in e and "toIntervalDay(30)" not in e for e in longer.values())
    assert caplog.text.count("lengthened from") == 8
    caplog.clear()
    kept = start(30 * 86400)
    assert all("toIntervalDay(90)" in e for e in kept.values())
    assert caplog.text.count("left as it is") == 8 and "spanhouse schema --apply-retention" in caplog.text
    caplog.clear()
    forever = start(0)
    assert all(" TTL " not in e for e in forever.values()) and caplog.text.count("removed: ttl 0") == 8
    caplog.clear()
    assert start(30 * 86400) == forever and caplog.text.count("left as it is") == 8  # no TTL: kept forever
    # a person may shorten it: the schema command applies the config's ttl to every table
    import yaml
    from click.testing import CliRunner

    from spanhouse.cli import main

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": "127.0.0.1:0"}}}},
        "exporters": {"clickhouse": {"endpoint": chdb_endpoint(), "database": db, "ttl": "48h"}},
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["clickhouse"]}}}}))
    result = CliRunner().invoke(main, ["schema", "--apply-retention", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("retention set to ttl 48h on: ")
    client = connect(ClickHouseConfig(endpoint=chdb_endpoint(), database=db))
    try:
        engines = [e for (e,) in client.query("SELECT engine_full FROM system.tables WHERE database = {db:String} "
                                              "AND engine LIKE '%MergeTree' AND name != 'genai_dataset_examples'",
                                              parameters={"db": db}).result_rows]
    finally:
        client.close()
    assert len(engines) == 8 and all("toIntervalDay(2)" in e for e in engines)


def test_a_store_path_that_is_a_file_and_a_damaged_queue_id_say_what_to_do(tmp_path):
    from spanhouse.errors import SpanhouseError
    from spanhouse.store import connect

    (tmp_path / "data").write_text("not a directory")
    with pytest.raises(SpanhouseError, match="is a file, not a directory"):
        connect(ClickHouseConfig(endpoint=f"chdb://{tmp_path / 'data'}"))
    (tmp_path / "queue").mkdir()
    (tmp_path / "queue" / "queue.id").write_bytes("café\n".encode())
    with pytest.raises(SpanhouseError, match="queue.id is not the id spanhouse wrote: restore it"):
        helper(Sink(), tmp_path, storage=QueueStorage.FILE)


def test_tokens_stay_unique_when_segments_rotate_and_are_deleted(tmp_path):
    """Segments rotated during a run start with the count too: once the first is deleted, nothing
    else may hold it."""
    first = Sink()
    h = helper(first, tmp_path, storage=QueueStorage.FILE, num_consumers=1, max_disk_mib=8)
    big = make_batch(2000)
    for _ in range(12):  # several MiB, past the 1 MiB segments of an 8 MiB budget
        h.consume(big)
        wait_for(lambda: len(h.queue) == 0)
    h.shutdown()
    numbers = sorted(int(p.stem) for p in (tmp_path / "queue").iterdir() if p.suffix == ".log")
    assert numbers[0] > 1  # the first segments were rotated away and deleted
    helper(Sink(), tmp_path, storage=QueueStorage.FILE).shutdown()
    later = Sink()
    h3 = helper(later, tmp_path, storage=QueueStorage.FILE)
    h3.consume(make_batch(1))
    wait_for(lambda: len(h3.queue) == 0)
    h3.shutdown()
    assert {t for _, t in first.pushes}.isdisjoint({t for _, t in later.pushes})


def test_a_full_disk_at_start_still_replays_and_deletes_nothing(tmp_path, monkeypatch, caplog):
    import errno

    from spanhouse.exporters import filequeue

    h = helper(Sink([RetryableError("down")] * 10_000), tmp_path, storage=QueueStorage.FILE, num_consumers=1)
    h.consume(make_batch(2))
    h.shutdown(timeout=1)
    before = sorted(p.name for p in (tmp_path / "queue").iterdir() if p.suffix == ".log")

    def full(self, number):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(filequeue._Log, "open_new", full)
    sink = Sink()
    with caplog.at_level("ERROR"):
        h2 = helper(sink, tmp_path, storage=QueueStorage.FILE)
    wait_for(lambda: len(h2.queue) == 0)
    h2.shutdown()
    assert len(sink.delivered()) == 2 and "deleting none" in caplog.text
    assert sorted(p.name for p in (tmp_path / "queue").iterdir() if p.suffix == ".log") == before


def _open_store_elsewhere(path) -> None:
    """Open an embedded store at `path` in a process of its own (chDB serves one path per process, and
    this one's is the test store), with the umask 022 of most machines."""
    import subprocess
    import sys

    code = ("import os, sys; os.umask(0o022)\n"
            "from spanhouse.exporters.clickhouse import ClickHouseConfig\n"
            "from spanhouse.store import connect\n"
            "connect(ClickHouseConfig(endpoint='chdb://' + sys.argv[1])).query('SELECT 1')\n")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=120)


def test_the_store_and_queue_directories_spanhouse_creates_are_its_owners_alone(tmp_path):
    """Spans at rest (the embedded store, the sending queue) hold prompts and completions: a directory
    spanhouse creates for them is 0700, whatever the umask, so other users cannot read their way in."""
    _open_store_elsewhere(tmp_path / "new" / "spanhouse-data")
    old = os.umask(0o022)
    try:
        helper(Sink(), tmp_path / "q", storage=QueueStorage.FILE).shutdown()
        # the shipped layout: the queue (made first, at start) inside the store's directory
        helper(Sink(), tmp_path / "default" / "spanhouse-data", storage=QueueStorage.FILE).shutdown()
        # as `spanhouse serve` starts it: the embedded store records its queue in its directory first
        shipped = tmp_path / "shipped" / "spanhouse-data"
        served = HelperExporter(StoreSink(shipped), ExporterHelperSettings(
            sending_queue=QueueSettings(storage=QueueStorage.FILE, directory=str(shipped / "queue")),
            retry_on_failure=FAST), "test")
        served.start(None)
        served.shutdown()
    finally:
        os.umask(old)
    assert (tmp_path / "shipped" / "spanhouse-data").stat().st_mode & 0o777 == 0o700
    _open_store_elsewhere(tmp_path / "default" / "spanhouse-data")
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "new" / "spanhouse-data").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "q" / "queue").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "default" / "spanhouse-data").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "default" / "spanhouse-data" / "queue").stat().st_mode & 0o777 == 0o700


def test_a_store_directory_other_users_can_read_is_warned_about_once(tmp_path, caplog):
    """A store made by an earlier spanhouse kept the umask's 0755; spanhouse leaves an existing
    directory's mode alone, but says how to close it."""
    from spanhouse.fsprivate import warn_if_shared

    shared, private = tmp_path / "shared", tmp_path / "private"
    shared.mkdir(mode=0o755)
    private.mkdir(mode=0o700)
    shared.chmod(0o755)
    with caplog.at_level(logging.WARNING, logger="spanhouse.fsprivate"):
        for _ in range(2):
            warn_if_shared(str(shared), "the store's directory")
            warn_if_shared(str(private), "the store's directory")
    (record,) = caplog.records
    assert f"chmod 700 {shared}" in record.getMessage() and "mode 755" in record.getMessage()
