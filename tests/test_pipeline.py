"""Pipeline semantics: batching keeps acknowledgements, failures reach the waiting client, limits refuse data."""

from __future__ import annotations

import gc
import threading

import pytest
from spanhouse.processors.batch import BatchConfig, BatchProcessor
from spanhouse.processors.memory_limiter import MemoryLimiter, MemoryLimiterConfig

from spanhouse.batch import SpanBatch
from spanhouse.component import ComponentID, Exporter
from spanhouse.config import Duration
from spanhouse.errors import PermanentError, RetryableError
from spanhouse.service import Pipeline


def spans(n: int, name: str = "s") -> SpanBatch:
    b = SpanBatch()
    b.resources.append(__import__("spanhouse.batch", fromlist=["Resource"]).Resource({"service.name": "x"}))
    b.scopes.append(__import__("spanhouse.batch", fromlist=["Scope"]).Scope())
    for i in range(n):
        b.append(resource=0, scope=0, trace_id="1" * 32, span_id=f"{i + 1:016x}", name=f"{name}{i}",
                 start_time_unix_nano=1, end_time_unix_nano=2)
    return b


class Sink(Exporter):
    def __init__(self, fail: Exception | None = None):
        self.batches: list[SpanBatch] = []
        self.fail = fail

    def consume(self, batch: SpanBatch) -> None:
        if self.fail:
            raise self.fail
        self.batches.append(batch)


def test_batch_processor_merges_requests_and_answers_each_after_export():
    sink = Sink()
    proc = BatchProcessor(BatchConfig(send_batch_size=5, timeout=Duration(10)))
    pipe = Pipeline(ComponentID("traces"), [(ComponentID("batch"), proc)], [(ComponentID("sink"), sink)], ack_timeout=5)
    done = []
    threads = [threading.Thread(target=lambda i=i: (pipe.consume(spans(2, f"r{i}")), done.append(i)))
               for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert sorted(done) == [0, 1, 2]
    assert sum(len(b) for b in sink.batches) == 6
    assert len(sink.batches[0]) >= 5  # merged, not one insert per request


def test_timeout_flush_and_max_size_split():
    sink = Sink()
    proc = BatchProcessor(BatchConfig(send_batch_size=100, send_batch_max_size=100, timeout=Duration(0.02)))
    pipe = Pipeline(ComponentID("traces"), [(ComponentID("batch"), proc)], [(ComponentID("sink"), sink)], ack_timeout=5)
    pipe.start()
    try:
        pipe.consume(spans(3))  # below the size: sent by the timer
        pipe.consume(spans(250))  # above the max: split, the client answered after all pieces
    finally:
        pipe.stop()
    sizes = [len(b) for b in sink.batches]
    assert sum(sizes) == 253 and max(sizes) <= 100


def test_export_failure_reaches_every_merged_request():
    pipe = Pipeline(ComponentID("traces"), [(ComponentID("batch"), BatchProcessor(BatchConfig(send_batch_size=4)))],
                    [(ComponentID("sink"), Sink(RetryableError("clickhouse down", retry_after=3)))], ack_timeout=5)
    errors = []

    def send():
        try:
            pipe.consume(spans(2))
        except RetryableError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(errors) == 2 and all(e.retry_after == 3 for e in errors)


def test_permanent_error_is_not_masked():
    pipe = Pipeline(ComponentID("traces"), [], [(ComponentID("sink"), Sink(PermanentError("bad column")))])
    with pytest.raises(PermanentError, match="bad column"):
        pipe.consume(spans(1))


def test_a_processor_failing_unexpectedly_is_named_without_its_internals(caplog):
    class Broken:
        def process(self, batch):
            return int("maria" + "@example.com")  # a ValueError whose message quotes the data

    sink = Sink()
    pipe = Pipeline(ComponentID("traces"), [(ComponentID("genai_cost"), Broken())], [(ComponentID("sink"), sink)])
    with pytest.raises(RetryableError) as err:
        pipe.consume(spans(1))
    assert str(err.value) == ("processor genai_cost failed on this request (ValueError); "
                              "the spanhouse log has the details")
    assert sink.batches == [] and "ValueError" in caplog.text and "process" in caplog.text  # where it failed
    assert "maria@example.com" not in caplog.text  # spans are not redacted yet when a processor fails


def test_memory_limiter_refuses_over_the_soft_limit_and_recovers():
    used = [100 << 20]
    limiter = MemoryLimiter(MemoryLimiterConfig(limit_mib=200, spike_limit_mib=50), measure=lambda: used[0])
    limiter.check()
    assert len(limiter.process(spans(1))) == 1
    used[0] = 160 << 20
    limiter.check()
    with pytest.raises(RetryableError, match="memory limit"):
        limiter.process(spans(1))
    used[0] = 120 << 20
    limiter.check()
    assert len(limiter.process(spans(1))) == 1


def test_split_batches_acknowledge_when_all_pieces_are_stored():
    from spanhouse.batch import Ack

    b = spans(10)
    ack = Ack()
    b.acks.append(ack)
    pieces = b.split(4)
    assert [len(p) for p in pieces] == [4, 4, 2]
    pieces[0].succeed()
    pieces[2].succeed()
    assert not ack.done
    pieces[1].succeed()
    ack.wait(0)
    b2 = spans(4)
    ack2 = Ack()
    b2.acks.append(ack2)
    first, second = b2.split(2)
    second.succeed()
    first.fail(RetryableError("lost"))
    with pytest.raises(RetryableError):
        ack2.wait(0)


def test_refused_requests_leave_no_garbage_for_the_cycle_collector():
    """A failure reaches the waiting client and is then let go: the acknowledgement does not keep the
    exception whose traceback holds the frames, and so the batch, that waited for it. (`spanhouse
    serve` collects cycles rarely; refused batches kept that way piled up under the memory limiter.)"""
    limiter = MemoryLimiter(MemoryLimiterConfig(limit_mib=1024), measure=lambda: 2000 << 20)
    limiter.check()
    pipe = Pipeline(ComponentID("traces"), [(ComponentID("memory_limiter"), limiter)],
                    [(ComponentID("sink"), Sink())])
    gc.collect()
    gc.disable()
    try:
        for _ in range(20):
            with pytest.raises(RetryableError):
                pipe.consume(spans(50))
        left = gc.collect()
    finally:
        gc.enable()
    assert left < 50, f"{left} objects of refused requests were left to the cycle collector"


def test_a_signal_while_starting_stops_the_service_once_it_has_started(monkeypatch, caplog):
    """SIGTERM during a slow start (the embedded store opening) used to kill the process outright."""
    import os
    import signal

    from support import service_config, unique_database

    from spanhouse.config import parse_config
    from spanhouse.service import Service

    db = unique_database("sigstart")
    service = Service(parse_config(service_config(db), env={}))
    real_start = service.start

    def start_interrupted() -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # arrives before any receiver is up
        real_start()

    monkeypatch.setattr(service, "start", start_interrupted)
    with caplog.at_level("INFO"):
        service.run()  # returns: started, then stopped gracefully
    assert "a signal arrived while starting" in caplog.text and "spanhouse stopped" in caplog.text
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_batch_timeout_clients_would_not_wait_for_is_warned_about(caplog):
    """The batch processor answers a client only once its batch is stored: a Collector-style 12 s timeout
    outlasts the SDK exporters' 10 s, and they send everything again."""
    with caplog.at_level("WARNING", logger="spanhouse.processors.batch"):
        BatchProcessor(BatchConfig(timeout=Duration(12)))
        BatchProcessor(BatchConfig(timeout=Duration(2)))
    (record,) = [r for r in caplog.records if "holds each client's answer" in r.getMessage()]
    assert "timeout 12s" in record.getMessage()


class Refusing(Sink):
    """Refuses the spans whose name ends in "0" (as a store refuses spans past its retention)."""

    def refuses(self, batch: SpanBatch):
        indexes = [i for i, name in enumerate(batch.name) if name.endswith("0")]
        return (indexes, f"{len(indexes)} span(s) refused by the test store") if indexes else None


def test_refused_spans_reach_no_exporter_of_their_pipeline_and_fan_out_answers_the_most_refused():
    from spanhouse.service import FanoutConsumer

    store, tee, other = Refusing(), Sink(), Sink()
    proc = BatchProcessor(BatchConfig(send_batch_size=100, timeout=Duration(0.02)))
    stored = Pipeline(ComponentID("traces"), [(ComponentID("batch"), proc)],
                      [(ComponentID("store"), store), (ComponentID("tee"), tee)], ack_timeout=5)
    forwarded = Pipeline(ComponentID("traces", "forward"), [], [(ComponentID("other"), other)], ack_timeout=5)
    stored.start()
    try:
        refusal = FanoutConsumer([stored, forwarded]).consume(spans(3))
    finally:
        stored.stop()
    assert (refusal.count, refusal.message) == (1, "1 span(s) refused by the test store")
    assert [b.name for b in store.batches] == [b.name for b in tee.batches] == [["s1", "s2"]]
    assert [b.name for b in other.batches] == [["s0", "s1", "s2"]]  # a pipeline without the store keeps them
    # a request the store refuses whole is answered without reaching any exporter
    assert stored.consume(spans(1)).count == 1 and len(store.batches) == 1
