"""Recall and precision of the detectors on the labeled corpus (tests/redact_corpus.py).

Fails below the issue's bars: recall 99% for emails, cards, keys, JWTs and private keys; 95% for
phones, IBANs, SSNs and IPs; at most 2% of hard negatives altered; and on any false positive at all.
The figures are printed (`-s`) so a change in detection quality shows up in review.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
import redact_corpus as corpus

from spanhouse.redact import RedactionSettings, Redactor
from spanhouse.redact.detectors import BUILTIN
from spanhouse.redact.scanner import Scanner

POSITIVES = corpus.positives()
NEGATIVES = corpus.hard_negatives()


def _group(detector: str) -> str:
    return "api keys" if detector in corpus.KEY_DETECTORS else detector


@pytest.fixture(scope="module")
def scores():
    scanner = Scanner(BUILTIN)
    total, caught, tp, fp = Counter(), Counter(), Counter(), Counter()
    for text, labels in POSITIVES:
        data = text.encode()
        found = scanner.find(data)
        spans = []
        for det, value in labels:
            start = data.index(value.encode())
            end = start + len(value.encode())
            spans.append((det, start, end))
            total[_group(det)] += 1
            if any(f.detector.name == det and f.start <= start and f.end >= end for f in found):
                caught[_group(det)] += 1
        for f in found:
            hit = any(det == f.detector.name and f.start < end and f.end > start for det, start, end in spans)
            (tp if hit else fp)[f.detector.name] += 1
    altered = 0
    for text in NEGATIVES:
        found = scanner.find(text.encode())
        altered += bool(found)
        for f in found:
            fp[f.detector.name] += 1
    return total, caught, tp, fp, altered


def test_corpus_is_large_and_covers_every_detector():
    kinds = {det for _, labels in POSITIVES for det, _ in labels}
    assert kinds == {d.name for d in BUILTIN}
    assert len(POSITIVES) >= 1500 and len(NEGATIVES) >= 500
    assert any(not text.isascii() for text, _ in POSITIVES)


def test_recall_meets_the_bars(scores):
    total, caught, tp, fp, altered = scores
    report = []
    for group in sorted(total):
        recall = caught[group] / total[group]
        report.append(f"{group:14s} recall {recall:.3f} ({caught[group]}/{total[group]})")
    for det in sorted(set(tp) | set(fp)):
        report.append(f"{det:14s} precision {tp[det] / (tp[det] + fp[det]):.3f} (false positives {fp[det]})")
    report.append(f"hard negatives altered: {altered}/{len(NEGATIVES)}")
    print("\n" + "\n".join(report))
    low = {g: caught[g] / total[g] for g, bar in corpus.THRESHOLDS.items() if caught[g] / total[g] < bar}
    assert not low, f"recall below the bar: {low}"


def test_hard_negatives_are_left_alone(scores):
    altered = scores[4]
    assert altered / len(NEGATIVES) <= 0.02


def test_no_detector_finds_anything_it_should_not():
    """Precision is 1.000 for every detector on the corpus (its figure when the key labels, dotted
    cards and AWS key pairs were added, with near misses of each): keep it there."""
    scanner = Scanner(BUILTIN)
    wrong = [text for text in NEGATIVES if scanner.find(text.encode())]
    for text, labels in POSITIVES:
        data = text.encode()
        spans = [(det, data.index(v.encode()), data.index(v.encode()) + len(v.encode())) for det, v in labels]
        wrong += [text for f in scanner.find(data)
                  if not any(det == f.detector.name and f.start < end and f.end > start for det, start, end in spans)]
    assert wrong == []


@pytest.mark.parametrize("ensure_ascii", [True, False], ids=["json-escaped", "json-utf8"])
def test_values_inside_json_messages_are_replaced_and_json_still_parses(ensure_ascii):
    redactor = Redactor(RedactionSettings(hash_key="k" * 32))
    missed = []
    for text, labels in POSITIVES[::3]:
        raw = corpus.as_messages(text, ensure_ascii)
        out = redactor.text.text(raw, Counter())
        parsed = json.loads(out)
        content = parsed[1]["parts"][0]["content"]
        assert parsed[0]["parts"][0]["content"] == "You are a helpful support agent."
        missed += [(det, value) for det, value in labels if value in content]
    assert len(missed) <= len(POSITIVES[::3]) * 0.01, missed[:10]


def test_hard_negatives_inside_json_are_returned_byte_for_byte():
    redactor = Redactor(RedactionSettings(hash_key="k" * 32))
    changed = 0
    for text in NEGATIVES:
        raw = corpus.as_messages(text, ensure_ascii=False)
        changed += redactor.text.text(raw, Counter()) != raw
    assert changed / len(NEGATIVES) <= 0.02
