"""Throughput of the redaction detectors on LLM message text, in MB/s on one core.

Run by hand (CI does not time things):

    python benchmarks/bench_redact.py [--mb 8] [--repeat 5]

The text is realistic chat content: support-ticket prose in several languages, markdown, code,
tables of numbers, ids, timestamps and prices, with a sensitive value (email, phone, card, IBAN,
key, ...) in about one message in four. It is generated with the labeled corpus from tests/.

Measured in the same run, on the same text:
  baseline copy+find  bytes.find for '@' plus a copy: what touching every byte once costs
  baseline re email   one backtracking Python `re` email pattern (what a naive redactor runs)
  scanner.find        all 19 built-in detectors: one RE2 set pass + exact matches + validators
  text (plain)        TextRedactor on the same messages as plain strings (encode, scan, replace)
  text (JSON)         TextRedactor on the messages as `gen_ai.input.messages` JSON (escape-aware)
  processor           genai_redact on SpanBatches of chat spans (policy, rules, record), spans/s
  adversarial         candidate-dense inputs at 100 KB and 1 MB: time grows linearly (ratio ~10)
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import redact_corpus as corpus  # noqa: E402
from spanhouse.processors.genai_redact import GenaiRedactConfig, GenaiRedactProcessor  # noqa: E402

from spanhouse import semconv as sc  # noqa: E402
from spanhouse.batch import Resource, Scope, SpanBatch  # noqa: E402
from spanhouse.redact import RedactionSettings, Redactor  # noqa: E402

PROSE = [
    "Thanks for reaching out! I looked into your account and the refund for order {order} was issued on "
    "{date}; depending on your bank it can take 5-10 business days to appear. The amount was ${price}.",
    "Here is a summary of the incident: between {time} and {time2} UTC the retrieval service returned "
    "stale results for about 3.2% of queries (p95 latency {ms} ms). Trace {trace} shows the slow step.",
    "Sure — here's how to paginate the API:\n\n```python\nfor page in range(1, 10):\n    resp = client.get("
    "'/v1/items', params={{'page': page, 'limit': 50}})\n    items.extend(resp.json()['data'])\n```\n",
    "| plan | seats | price |\n|---|---|---|\n| starter | 5 | $49.00 |\n| pro | 25 | ${price} |\n"
    "| enterprise | 250 | custom |\n\nAll prices exclude VAT (19% in Germany, 20% in France).",
    "Die Bestellung {order} wurde am {date} versandt. Bei Fragen antworten Sie einfach auf diese Nachricht; "
    "wir helfen gern weiter. Version {version} behebt das Problem mit dem Export.",
    "La commande {order} a été expédiée le {date}. Le remboursement de {price} € sera visible sous 5 jours.",
    "ご注文（{order}）は{date}に発送されました。ご不明な点がございましたら、お気軽にお問い合わせください。",
    "您的订单{order}已于{date}发货。如有任何问题，请随时与我们联系。版本{version}已修复此问题。",
    "The model (gpt-4o-2024-08-06) answered in {ms} ms with 1,245 input and 312 output tokens; request "
    "id chatcmpl-{rid}. Consider caching the system prompt: it is 1,024 tokens and identical across calls.",
]


def _fill(rng: random.Random, template: str) -> str:
    return template.format(
        order=f"ORD-{rng.randint(100000, 999999)}",
        date=f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        price=f"{rng.randint(10, 999)}.{rng.randint(0, 99):02d}",
        time=f"{rng.randint(0, 11):02d}:{rng.randint(0, 59):02d}",
        time2=f"{rng.randint(12, 23):02d}:{rng.randint(0, 59):02d}",
        ms=rng.randint(80, 9000),
        trace="".join(rng.choice("0123456789abcdef") for _ in range(32)),
        version=f"{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}",
        rid="".join(rng.choice(corpus.ALNUM) for _ in range(29)),
    )


def messages(total_bytes: int, seed: int = 7) -> list[str]:
    """Chat message contents of about 0.5-4 KB each, a sensitive value in about one in four."""
    rng = random.Random(seed)
    positives = [t for t, _ in corpus.positives(60)]
    negatives = corpus.hard_negatives(300)
    out, size = [], 0
    while size < total_bytes:
        parts = [_fill(rng, rng.choice(PROSE)) for _ in range(rng.randint(1, 8))]
        parts.insert(rng.randint(0, len(parts)), rng.choice(negatives))
        if rng.random() < 0.25:
            parts.insert(rng.randint(0, len(parts)), rng.choice(positives))
        text = "\n\n".join(parts)
        out.append(text)
        size += len(text.encode())
    return out


def _best(fn, repeat: int) -> float:
    """Best CPU time of this thread over `repeat` runs: MB/s per core, even on a shared machine."""
    times = []
    for _ in range(repeat):
        start = time.thread_time()
        fn()
        times.append(time.thread_time() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=8.0, help="megabytes of message text (default 8)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per measurement; the best is reported")
    args = ap.parse_args()

    texts = messages(int(args.mb * 1e6))
    blobs = [t.encode() for t in texts]
    as_json = [corpus.as_messages(t, ensure_ascii=True) for t in texts]
    mb = sum(len(b) for b in blobs) / 1e6
    mb_json = sum(len(j.encode()) for j in as_json) / 1e6
    redactor = Redactor(RedactionSettings(hash_key="bench-key-0123456789"))
    scanner, text = redactor.scanner, redactor.text
    email_re = re.compile(rb"[\w.%+-]+@[\w.-]+\.[A-Za-z]{2,}")

    def copy_find():
        for b in blobs:
            bytes(bytearray(b)).find(b"@")

    def re_email():
        for b in blobs:
            for _ in email_re.finditer(b):
                pass

    def scan():
        for b in blobs:
            scanner.find(b)

    def plain():
        counts = Counter()
        for t in texts:
            text.text(t, counts)

    def in_json():
        counts = Counter()
        for j in as_json:
            text.text(j, counts)

    rows = [
        ("baseline copy+find", mb, _best(copy_find, args.repeat)),
        ("baseline re email", mb, _best(re_email, args.repeat)),
        ("scanner.find", mb, _best(scan, args.repeat)),
        ("text (plain)", mb, _best(plain, args.repeat)),
        ("text (JSON)", mb_json, _best(in_json, args.repeat)),
    ]
    print(
        f"{len(texts)} messages, {mb:.1f} MB of text ({mb_json:.1f} MB as JSON), best of {args.repeat}, "
        "per core (CPU time of the measuring thread)"
    )
    for name, size, secs in rows:
        print(f"  {name:20s} {size / secs:9.1f} MB/s")

    proc = GenaiRedactProcessor(GenaiRedactConfig(hash_key="bench-key-0123456789"))
    batches = []
    for start in range(0, len(as_json), 512):
        batch = SpanBatch()
        batch.resources.append(
            Resource({sc.SERVICE_NAME: "bench", sc.DEPLOYMENT_ENVIRONMENT_NAME: "production"})
        )
        batch.scopes.append(Scope("bench"))
        for j in as_json[start : start + 512]:
            batch.append(
                resource=0,
                scope=0,
                trace_id="0" * 32,
                span_id="0" * 16,
                name="chat gpt-4o",
                start_time_unix_nano=1,
                end_time_unix_nano=2,
                attributes={
                    sc.GEN_AI_OPERATION_NAME: "chat",
                    sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
                    sc.GEN_AI_PROVIDER_NAME: "openai",
                    sc.GEN_AI_USAGE_INPUT_TOKENS: 1245,
                    sc.GEN_AI_USAGE_OUTPUT_TOKENS: 312,
                    sc.USER_ID: "user-42",
                    sc.GEN_AI_INPUT_MESSAGES: j,
                    sc.GEN_AI_OUTPUT_MESSAGES: json.dumps(
                        [{"role": "assistant", "parts": [{"type": "text", "content": "Done."}]}]
                    ),
                    sc.GEN_AI_CONVERSATION_ID: "conv-1",
                    sc.SESSION_ID: "s-1",
                },
            )
        batches.append(batch)
    spans = sum(len(b) for b in batches)
    per_run = []
    for _ in range(args.repeat):
        fresh = [b.copy() for b in batches]
        start = time.thread_time()
        for b in fresh:
            proc.process(b)
        per_run.append(time.thread_time() - start)
    secs = min(per_run)
    print(
        f"  {'processor':20s} {mb_json / secs:9.1f} MB/s  {spans / secs:9.0f} spans/s "
        f"({statistics.mean(per_run) * 1e6 / spans:.1f} µs/span mean)"
    )

    print("adversarial inputs (linear time: the 1 MB run takes ~10x the 100 KB run)")
    shapes = {"spaced digits": "4 1 1 1 ", "dotted digits": "1.2.", "plus groups": "+1 2 ", "colons": "ab:"}
    for name, unit in shapes.items():
        secs = []
        for size in (100_000, 1_000_000):
            data = (unit * (size // len(unit) + 1))[:size].encode()
            start = time.thread_time()
            scanner.find(data)
            secs.append(time.thread_time() - start)
        print(f"  {name:20s} {1.0 / secs[1]:9.1f} MB/s  ratio 1MB/100KB {secs[1] / secs[0]:5.1f}")


if __name__ == "__main__":
    main()
