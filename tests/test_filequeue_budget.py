"""The file queue's disk budget (`sending_queue::max_disk_mib`): it counts what is not delivered yet,
delivered records never keep an emptied queue refusing, a batch larger than the whole budget gets a
clear, final answer, and none of it loses or renumbers anything across a kill -9."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from support import service_config, start_service, unique_database

from spanhouse.errors import BatchTooLarge, Overloaded
from spanhouse.exporters.filequeue import _HEADER, _SEQ, FileQueue, _item_record
from spanhouse.exporters.queue import Encoded

MIB = 1 << 20
SEQ_RECORD = ACK_RECORD = _HEADER.size + _SEQ.size  # a segment's count; the acknowledgement of one item


def encoded(record_bytes: int) -> Encoded:
    """An encoded batch whose queue record is exactly `record_bytes` long."""
    overhead = len(_item_record(1, Encoded((b"",), 1, "t"), None))
    return Encoded((b"x" * (record_bytes - overhead),), 1, "t")


def deliver_all(q: FileQueue) -> None:
    stop = threading.Event()
    while (unit := q.take(None, stop, wait=0)) is not None:
        q.done(unit)


def segments(directory) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(directory.glob("*.log"))}


def wait_for(fn, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not fn():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_delivered_records_never_make_an_emptied_queue_refuse(tmp_path):
    """A segment whose last acknowledgement pushed it just past the segment size is not rotated until
    the next write; the put that would do it must not be refused for the delivered records it holds."""
    q = FileQueue(str(tmp_path), 100, MIB, "t")  # 1 MiB budget, 1 MiB segments
    try:
        segment = q._log.segment_bytes
        q.put(encoded(segment - SEQ_RECORD - ACK_RECORD // 2))
        deliver_all(q)  # the acknowledgement ends past the segment size: nothing is left to deliver
        assert len(q) == 0 and sum(segments(tmp_path).values()) > segment
        for size in (MIB, MIB - 1, segment // 2, MIB):  # anything up to the budget fits an empty queue
            q.put(encoded(size))
            assert sum(segments(tmp_path).values()) <= MIB + segment
            deliver_all(q)
        assert len(segments(tmp_path)) == 1  # delivered segments were deleted, not kept
        # the budget still counts what is not delivered: a full queue refuses, retryably
        q.put(encoded(MIB // 2))
        q.put(encoded(MIB // 2 - 64))
        with pytest.raises(Overloaded, match="not yet delivered; retry later"):
            q.put(encoded(1024))
    finally:
        q.shutdown()


def test_a_batch_larger_than_the_whole_budget_is_refused_for_good_with_what_to_change(tmp_path, caplog):
    q = FileQueue(str(tmp_path), 100, MIB, "clickhouse")
    try:
        before = segments(tmp_path)
        with caplog.at_level("WARNING"), pytest.raises(BatchTooLarge) as err:
            q.put(encoded(MIB + 1))
        assert "larger than the whole disk budget" in str(err.value) and "sending_queue::max_disk_mib" in str(err.value)
        assert "max_disk_mib: 1" in caplog.text
        assert segments(tmp_path) == before and len(q) == 0  # nothing written, nothing reserved
        q.put(encoded(MIB))  # and the queue is not stuck: a batch that fits is taken at once
        assert len(q) == 1
    finally:
        q.shutdown()


def test_an_item_written_just_before_a_rotation_keeps_its_segment(tmp_path):
    """An item counts in its segment from its write on: a delivery that rotates the log meanwhile must
    not delete the segment under an item whose put has not returned yet."""
    q = FileQueue(str(tmp_path), 100, 8 * MIB, "t")  # 1 MiB segments
    half = q._log.segment_bytes // 2
    q.put(encoded(half))
    first = q.take(None, threading.Event(), wait=0)
    errors: list[BaseException] = []

    def put_second() -> None:
        try:
            q.put(encoded(half))
        except BaseException as exc:
            errors.append(exc)

    q._log._cond.acquire()  # hold the writer off until the queue's own lock is ours too
    writer = threading.Thread(target=put_second)
    writer.start()
    wait_for(lambda: q._reserved_bytes > 0)  # admitted: it now waits to write
    with q._cond:  # the put cannot finish its bookkeeping until this block ends
        q._log._cond.release()
        wait_for(lambda: sum(segments(tmp_path).values()) > 2 * half)  # the second item is on disk
        q.done(first)  # the acknowledgement starts segment 2; segment 1 holds the second item
    writer.join(10)
    assert not errors and len(q) == 1
    q.shutdown()
    again = FileQueue(str(tmp_path), 100, 8 * MIB, "t")
    try:
        assert again.replayed == 1
        unit = again.take(None, threading.Event(), wait=0)
        assert [len(b.parts[0]) for b in again.load(unit)] == [len(encoded(half).parts[0])]
    finally:
        again.shutdown()


CHILD = """
import sys, threading
from spanhouse.exporters.filequeue import _HEADER, _SEQ, FileQueue, _item_record
from spanhouse.exporters.queue import Encoded

SEQ_RECORD = _HEADER.size + _SEQ.size

def encoded(n):
    return Encoded((b"x" * (n - len(_item_record(1, Encoded((b"",), 1, "t"), None))),), 1, "t")

q = FileQueue(sys.argv[1], 100, 1 << 20, "t")
q.put(encoded(q._log.segment_bytes - SEQ_RECORD - SEQ_RECORD // 2))
unit = q.take(None, threading.Event(), wait=0)
q.done(unit)
print("delivered", flush=True)
sys.stdin.readline()  # the test copies the segment now, as a crash before its deletion would leave it
q.put(encoded(1 << 20))  # fits only once the delivered records are dropped: a new segment
print("ready", q._pending[-1].items[0].seq, flush=True)
threading.Event().wait()
"""


def test_kill9_after_the_queue_drops_delivered_records_loses_and_renumbers_nothing(tmp_path):
    queue = tmp_path / "queue"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(queue)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline().split()  # type: ignore[union-attr]
        assert line == ["delivered"], line
        old = {p.name: p.read_bytes() for p in queue.glob("*.log")}
        child.stdin.write("go\n")  # type: ignore[union-attr]
        child.stdin.flush()  # type: ignore[union-attr]
        line = child.stdout.readline().split()  # type: ignore[union-attr]
        assert line and line[0] == "ready", line
        last = int(line[1])
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
    assert not set(old) & set(segments(queue))  # the delivered segment was deleted

    def check(directory) -> None:
        q = FileQueue(str(directory), 100, MIB, "t")
        try:
            assert q.replayed == 1  # the batch acknowledged after the rotation; the delivered one is not
            unit = q.take(None, threading.Event(), wait=0)
            assert unit.items[0].seq == last
            assert [len(b.parts[0]) for b in q.load(unit)] == [len(encoded(MIB).parts[0])]
            q.done(unit)
            q.put(encoded(1000))
            assert q._pending[-1].items[0].seq > last  # numbers are never handed out twice
        finally:
            q.shutdown()

    # a crash between starting the new segment and deleting the old one leaves both
    crashed_mid_rotation = tmp_path / "mid"
    shutil.copytree(queue, crashed_mid_rotation)
    for name, data in old.items():
        (crashed_mid_rotation / name).write_bytes(data)
    check(queue)
    check(crashed_mid_rotation)


def post(url: str, body: bytes) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def spans(trace: int, count: int, pad: int) -> bytes:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": f"{trace:032x}", "spanId": f"{i + 1:016x}", "name": "s", "startTimeUnixNano": "1",
         "endTimeUnixNano": "2", "attributes": [{"key": "pad", "value": {"stringValue": "p" * pad}}]}
        for i in range(count)]}]}]}).encode()


def test_a_served_request_over_the_budget_gets_413_and_the_queue_keeps_serving(tmp_path):
    db = unique_database("budget")
    exporter = {"sending_queue": {"storage": "file", "directory": str(tmp_path / "queue"), "max_disk_mib": 1,
                                  "batch": {"min_size": 1, "flush_timeout": "10ms"}}}
    svc = start_service(service_config(db, exporter=exporter, extensions={}, processor_configs={}), db)
    try:
        url = svc.http_url + "/v1/traces"
        status, body = post(url, spans(0x300, 400, 3000))  # ~1.2 MiB as queued
        assert status == 413, (status, body)
        assert "sending_queue::max_disk_mib" in json.loads(body)["message"]
        for t in range(4):  # each about half the budget: delivered ones never block the next
            assert post(url, spans(0x301 + t, 150, 3000))[0] == 200
            rows = svc.wait_rows("SELECT DISTINCT TraceId FROM otel_traces", t + 1)
        assert sorted(r[0] for r in rows) == [f"{0x301 + t:032x}" for t in range(4)]
    finally:
        svc.stop()
