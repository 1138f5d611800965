"""The redaction core: validators, scanner, tokens, JSON-aware replacement and failing closed."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from spanhouse.redact import DROP, RedactionSettings, Redactor
from spanhouse.redact import _validators as v
from spanhouse.redact.detectors import BUILTIN, custom
from spanhouse.redact.keys import Hasher
from spanhouse.redact.scanner import Scanner
from spanhouse.redact.text import TextRedactor, long_number

KEY = "test-key-0123456789abcdef"


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor(RedactionSettings(hash_key=KEY))


def found(text: str) -> list[tuple[str, str]]:
    data = text.encode()
    return [(f.detector.name, data[f.start : f.end].decode()) for f in Scanner(BUILTIN).find(data)]


def redact(r: Redactor, text: str) -> str:
    return r.text.text(text, Counter())


# --- validators ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number,ok",
    [
        ("4111111111111111", True),
        ("4111111111111112", False),
        ("378282246310005", True),
        ("6011111111111117", True),
        ("79927398713", True),
        ("79927398710", False),
    ],
)
def test_luhn(number, ok):
    assert v.luhn_ok(number) is ok


@pytest.mark.parametrize(
    "iban,ok",
    [
        ("DE89370400440532013000", True),
        ("DE89370400440532013001", False),
        ("GB82WEST12345698765432", True),
        ("GB82WEST1234569876543", False),
        ("NL91ABNA0417164300", True),
        ("XX89370400440532013000", False),
    ],
)
def test_iban_checksum_and_length(iban, ok):
    assert v.iban_ok(iban) is ok


def test_card_needs_luhn_and_a_known_issuer():
    assert found("card 4111 1111 1111 1111 ok") == [("card", "4111 1111 1111 1111")]
    assert found("order 4111 1111 1111 1112 ok") == []
    assert found("ts 1714567890123456 ok") == []  # Luhn-valid or not, 17… is no issuer
    assert found("card 4111 1111 1111 1111 2024 renewal") == [("card", "4111 1111 1111 1111")]


def test_iban_is_cut_at_the_country_length():
    assert found("IBAN DE89 3704 0044 0532 0130 00 ASAP") == [("iban", "DE89 3704 0044 0532 0130 00")]


def test_ssn_rules():
    assert found("ssn 123-45-6789.") == [("ssn", "123-45-6789")]
    assert found("ssn 666-45-6789 000-12-3456 123-00-4567 123-45-0000 123-45 6789") == []


def test_ip_addresses_but_not_versions_loopback_or_slices():
    assert found("from 203.0.113.9 and 2001:db8::8a2e:370:7334.") == [
        ("ipv4", "203.0.113.9"),
        ("ipv6", "2001:db8::8a2e:370:7334"),
    ]
    assert found("v1.2.3.4 1.2.3.4.5 127.0.0.1 0.0.0.0 ::1 a[1::2] Foo::Bar 12:34:56") == []


def test_phone_formats_and_dates():
    assert found("call +44 20 7946 0958 or (415) 555-0123, 電話03-1234-5678です") == [
        ("phone", "+44 20 7946 0958"),
        ("phone", "(415) 555-0123"),
        ("phone", "03-1234-5678"),
    ]
    assert found("on 2025-03-14 at 05.06.2024 10.30, build 10.0.19045.2965, order 5529 0296 6499 3708") == []


def test_keys_need_their_shape():
    assert found("sk-learn-is-a-nice-library-name-really") == []
    assert found("the task-runner-for-nightly-batch-exports-2024") == []
    assert found("AKIAIOSFODNN7EXAMPLE") == [("aws_key", "AKIAIOSFODNN7EXAMPLE")]
    sha = "0123456789abcdef0123456789abcdef01234567"
    assert found(f"aws_secret_access_key = {sha}") == []  # a lower-case hex hash is no secret key


def test_overlapping_findings_merge_under_the_higher_priority():
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
    assert found(f"Authorization: Bearer {jwt}") == [("jwt", jwt)]


def test_custom_patterns_are_detectors():
    scanner = Scanner([custom("employee_id", r"\bEMP-[0-9]{6}\b")])
    data = b"ticket from EMP-123456 about EMP-12"
    assert [(f.detector.name, data[f.start : f.end]) for f in scanner.find(data)] == [
        ("employee_id", b"EMP-123456")
    ]
    with pytest.raises(ValueError, match="lower_snake_case"):
        custom("Employee ID", "x")


# --- tokens ------------------------------------------------------------------------------


def test_tokens_are_typed_stable_keyed_and_normalized(redactor):
    a = redact(redactor, "write to Bob.Smith@Example.com")
    b = redact(redactor, "bob.smith@example.com replied")
    token = a.split()[-1]
    assert token.startswith("<EMAIL:") and token.endswith(">") and len(token) == len("<EMAIL:>") + 12
    assert token in b
    other = Redactor(RedactionSettings(hash_key="another-key-0123456789"))
    assert token not in redact(other, "bob.smith@example.com")
    assert redact(redactor, "+1 (415) 555-0123") == redact(redactor, "+1-415-555-0123")


def test_missing_hash_key_warns_once_and_uses_one_random_key_per_process(caplog, monkeypatch):
    from spanhouse.redact import keys

    monkeypatch.setattr(keys, "_PROCESS_KEY", [])
    with caplog.at_level("WARNING"):
        one, two = Hasher(""), Hasher("")
    assert caplog.text.count("SPANHOUSE_REDACTION_KEY") == 1
    assert one.token("EMAIL", "a@b.co") == two.token("EMAIL", "a@b.co")
    monkeypatch.setattr(keys, "_PROCESS_KEY", [])  # another process, or after a restart
    assert Hasher("").token("EMAIL", "a@b.co") != one.token("EMAIL", "a@b.co")


# --- JSON --------------------------------------------------------------------------------


def messages(content: str) -> str:
    return json.dumps([{"role": "user", "parts": [{"type": "text", "content": content}]}])


def test_json_content_is_redacted_and_still_parses(redactor):
    out = redact(redactor, messages("Hi, I'm José (josé@empresa.es), card 4111-1111-1111-1111\nthanks"))
    parsed = json.loads(out)
    content = parsed[0]["parts"][0]["content"]
    assert "josé@empresa.es" not in out and "4111" not in out
    assert content.startswith("Hi, I'm José (<EMAIL:") and content.endswith(">\nthanks")


def test_escapes_cannot_hide_values_in_json(redactor):
    hidden = '[{"content": "mail bob\\u0040example.com or https:\\/\\/app:s3cretPW@db.internal"}]'
    out = redact(redactor, hidden)
    assert "bob" not in json.loads(out)[0]["content"] and "s3cretPW" not in out
    quoted = json.dumps([{"content": '"SecretAccessKey": "kXkO73fqo9/zU7O6zOmkwEDdJeqp2nxphUCYGO/m"'}])
    assert "kXkO73fqo9" not in redact(redactor, quoted)


def test_escapes_cannot_hide_values_in_json_inside_json(redactor):
    """Tool-call arguments and tool results are JSON sent as a string inside the message JSON."""
    args = json.dumps({"to": "bob@example.com", "card": "4111 1111 1111 1111"}).replace("@", "\\u0040")
    msgs = json.dumps([{"role": "assistant", "parts": [{"type": "tool_call", "name": "send", "arguments": args}]}])
    counts = Counter()
    out = redactor.text.text(msgs, counts)
    inner = json.loads(json.loads(out)[0]["parts"][0]["arguments"])
    assert inner["to"].startswith("<EMAIL:") and inner["card"].startswith("<CARD:")
    assert counts == Counter(email=1, card=1)
    twice = json.dumps({"result": json.dumps({"args": args})})
    assert "bob" not in json.loads(json.loads(json.loads(redact(redactor, twice))["result"])["args"])["to"]
    # JSON inside JSON that is cut, with an escape that could hide a value, fails closed
    assert redact(redactor, json.dumps({"arguments": args[:-3]})) is DROP


def test_json_keys_are_labels(redactor):
    """Detectors that need a label (phone after `phone`, an AWS secret after its name) take a JSON key as
    the label, in raw and escaped JSON alike; a label in one value does not reach the next value."""
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    doc = {"Credentials": {"AccessKeyId": "AKIAIOSFODNN7EXAMPLE", "SecretAccessKey": secret}, "phone": "79460958123",
           "aws_secret_access_key": secret, "mobile": 4479460958123}
    for raw in (json.dumps(doc), json.dumps(doc, indent=2), json.dumps(doc) + " ", json.dumps([doc, "é\n"])):
        out = redact(redactor, raw)
        assert secret not in out and "79460958123" not in out and "4479460958123" not in out, raw
    plain = json.dumps({"note": "call my phone", "ticket": "79460958123", "size": 5, "phone": 7, "n": "79460958123"})
    assert redact(redactor, plain) is plain


def test_a_percent_encoded_email_in_a_url_gets_the_token_of_the_email(redactor):
    url = redact(redactor, "GET https://api.example.org/v1/users?email=Bob%40Example.com&page=2")
    token = redact(redactor, "bob@example.com")
    assert url == f"GET https://api.example.org/v1/users?email={token}&page=2"
    assert redact(redactor, "https://cdn.example.org/logo%402x.png") == "https://cdn.example.org/logo%402x.png"


def test_json_without_findings_is_returned_byte_for_byte(redactor):
    raw = '[ {"role" : "user", "parts": [{"type": "text", "content": "Order 4111 1111 1111 1112?\\n"}]} ]'
    assert redact(redactor, raw) is raw


def test_keys_and_long_numbers_inside_json(redactor):
    out = json.loads(redact(redactor, json.dumps({"bob@x.com": {"card": 4111111111111111, "count": 3}})))
    ((key, value),) = out.items()
    assert key.startswith("<EMAIL:") and value["card"].startswith("<CARD:") and value["count"] == 3


def test_cut_json_is_still_scanned(redactor):
    cut = messages("reach me at bob@example.com or +44 20 7946 0958 tomorrow")[:-12]
    out = redact(redactor, cut)
    assert "bob@example.com" not in out and "7946" not in out and out.startswith('[{"role": "user"')
    log_line = "[INFO] user bob@example.com logged in"
    assert "bob@example.com" not in redact(redactor, log_line)


def test_cut_json_with_hiding_escapes_is_dropped(redactor):
    assert redact(redactor, '[{"content": "mail bob\\u0040example.com and more') is DROP


def test_deep_json_falls_back_to_a_raw_scan(redactor):
    deep = "[" * 100 + '"bob@example.com"' + "]" * 100
    out = redact(redactor, deep)
    assert "bob@example.com" not in out and out.startswith("[" * 100)


# --- failing closed ----------------------------------------------------------------------


def test_unscannable_values_are_dropped():
    r = TextRedactor(Scanner(BUILTIN), Hasher(KEY), max_bytes=1024)
    counts = Counter()
    assert r.value("x" * 2000, counts) is DROP
    assert r.value(b"\xff\xfe binary", counts) is DROP
    assert r.value("lone \ud800 surrogate", counts) is DROP
    assert r.value(["ok", b"\xff"], counts) is DROP
    assert r.value(b"mail bob@example.com", counts).startswith("mail <EMAIL:")
    assert r.value(["a", "b@example.com"], counts)[1].startswith("<EMAIL:")
    plain = ["nothing", 1, 2.5, True]
    assert r.value(plain, counts) is plain
    assert counts == Counter(email=2)


# --- properties --------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SECRET = "zoe.lindqvist@example.org"
# random text without the characters any detector needs, so only SECRET is sensitive
_chars = st.characters(blacklist_characters="@0123456789+:.-/=_", blacklist_categories=("Cs",))
_plain = st.text(_chars, max_size=30)
_text = st.one_of(_plain, _plain.map(lambda t: f"{t} {SECRET} {t}"))
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _text,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_text, inner, max_size=5),
    max_leaves=25,
)


def _shape(node):
    if isinstance(node, dict):
        return {"dict": [_shape(v) for v in node.values()]}
    if isinstance(node, list):
        return [_shape(v) for v in node]
    if isinstance(node, (str, int)) and not isinstance(node, bool) or long_number(node):
        return "scalar"  # what a detector may replace by its token
    return type(node).__name__


@settings(max_examples=300, deadline=None)
@given(doc=st.lists(_json, min_size=1, max_size=4), ensure_ascii=st.booleans())
def test_any_json_document_keeps_parsing_and_loses_the_secret(redactor, doc, ensure_ascii):
    raw = json.dumps(doc, ensure_ascii=ensure_ascii)
    out = redactor.text.text(raw, Counter())
    assert out is not DROP
    parsed = json.loads(out)
    assert SECRET not in out and _shape(parsed) == _shape(doc)
    if SECRET not in raw:
        assert _numbers_as_tokens(parsed) == _numbers_as_tokens(doc)


def _numbers_as_tokens(node):
    """`node` with long numbers and tokens alike: a long number may be a card or phone number."""
    if isinstance(node, dict):
        return {_numbers_as_tokens(k): _numbers_as_tokens(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_numbers_as_tokens(v) for v in node]
    if long_number(node) or isinstance(node, str) and re.fullmatch(r"<[A-Z_]+:[0-9a-f]+>", node):
        return "<number or token>"
    return node


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_redaction_is_idempotent_on_any_text(redactor, text):
    once = redactor.text.text(f"{text} {SECRET}", Counter())
    assert once is not DROP and SECRET not in once
    assert redactor.text.text(once, Counter()) in (once, DROP)


def test_json_with_lone_surrogates_and_huge_integers_round_trips(redactor):
    raw = json.dumps(["\ud800 bob@example.com", 12345678901234567890123, {"n": -9223372036854775809}])
    out = redactor.text.text(raw, Counter())
    assert json.loads(out) == [json.loads(out)[0], 12345678901234567890123, {"n": -9223372036854775809}]
    assert "bob@example.com" not in out and json.loads(out)[0].startswith("\ud800 <EMAIL:")


def test_the_batch_memo_returns_what_the_redactor_returns(redactor):
    from spanhouse.redact.text import TextMemo

    texts = ["nothing here", f"mail {SECRET}", messages(f"hi {SECRET}"), "x" * 20, f"mail {SECRET}", "nothing here"]
    memo = TextMemo(redactor.text)
    for t in texts + texts:
        plain, memoed = Counter(), Counter()
        expected = redactor.text.text(t, plain)
        got = memo.text(t, memoed)
        assert got == expected and memoed == plain
        assert (got is t) == (expected is t)


def test_the_batch_memo_hashes_each_detected_value_once(redactor, monkeypatch):
    from spanhouse.redact.keys import Hasher
    from spanhouse.redact.text import TextMemo

    hashed = Counter()
    real = Hasher.token

    def counting(self, label, value):
        hashed[(label, value)] += 1
        return real(self, label, value)

    monkeypatch.setattr(Hasher, "token", counting)
    texts = [f"mail {SECRET} now", messages(f"hi {SECRET}"), f"again {SECRET.upper()}", f"{SECRET} once more"]
    memo = TextMemo(redactor.text)
    outs = [memo.text(t, Counter()) for t in texts]
    token = redactor.text.text(SECRET, Counter())
    assert all(token in out for out in outs)
    # one HMAC for the memo's four texts (the detector lower-cases the email), one for the direct call
    assert hashed == Counter({("EMAIL", SECRET.lower()): 2})
    assert type(redactor.text.hasher) is Hasher  # the shared redactor keeps no batch's values


# --- JSON redacted in place agrees with the parsed path ---------------------------------

_SENSITIVE = [
    SECRET, "+1 415 555 0134", "(415) 555-0134", "06 12 34 56 78", "4111 1111 1111 1111", "192.168.1.20",
    "DE89370400440532013000", "AKIAIOSFODNN7EXAMPLE", "sk-proj-abcdefghijklmnopqrstuvwx12", "phone 4155550134",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc", "Bearer abcdefghijklmnopqrstuvwxyz012345",
    # labels and the values they announce, so keys and values meet in both views
    "phone", "Tel", "79460958123", "SecretAccessKey", "kXkO73fqo9/zU7O6zOmkwEDdJeqp2nxphUCYGO/m",
]
# strings that JSON writes without any escape: no quote, backslash or control character
_raw_chars = st.characters(blacklist_characters='"\\', blacklist_categories=("Cs", "Cc"))
_raw_text = st.one_of(
    st.text(_raw_chars, max_size=20),
    st.builds(lambda a, s, b: f"{a}{s}{b}", st.text(_raw_chars, max_size=8), st.sampled_from(_SENSITIVE),
              st.text(_raw_chars, max_size=8)),
)
_raw_json = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | _raw_text
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.sampled_from([4111111111111111, 4155550134, -612345678, 79460958123, 7, 2.5]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_raw_text, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(doc=st.lists(_raw_json, min_size=1, max_size=4), indent=st.sampled_from([None, 2]))
def test_json_redacted_in_place_equals_the_parsed_path(redactor, doc, indent):
    raw = json.dumps(doc, ensure_ascii=False, indent=indent)
    parsed_path = TextRedactor(redactor.text.scanner, redactor.text.hasher)
    parsed_path._in_place = False
    fast_counts, slow_counts = Counter(), Counter()
    fast = redactor.text.text(raw, fast_counts)
    slow = parsed_path.text(raw, slow_counts)
    assert (fast is DROP) == (slow is DROP)
    if fast is not DROP:
        assert json.loads(fast) == json.loads(slow)
        assert fast_counts == slow_counts


def test_json_without_escapes_is_redacted_in_place_keeping_its_layout(redactor):
    raw = json.dumps({"messages": [{"role": "user", "content": f"mail {SECRET} now"}], "n": 3}, indent=2)
    counts = Counter()
    out = redactor.text.text(raw, counts)
    assert out.startswith('{\n  "messages": [\n') and SECRET not in out and counts == Counter(email=1)
    token = json.loads(out)["messages"][0]["content"].split()[1]
    assert out == raw.replace(SECRET, token)


def test_attribute_maps_keep_their_key_order_and_plans_follow_each_value():
    """Redactor.attributes decides per key set once; the values of every span are still looked at."""
    from spanhouse import semconv as sc
    from spanhouse.redact.engine import Record
    from spanhouse.redact.settings import FieldRule, Policy

    r = Redactor(RedactionSettings(hash_key=KEY, fields=[
        FieldRule(keys=["customer.email"], action="drop"),
        FieldRule(keys=[sc.USER_ID], action="hash", to=sc.USER_HASH),
    ]))
    email = "maria.lopez@example.com"
    keys = ["a.first", "customer.email", "a.note", sc.USER_ID, "a.count", "a.last"]

    def one(values: list, policy: Policy = Policy.REDACTED) -> dict:
        return r.attributes(dict(zip(keys, values)), policy, Record(policy), "", r.memo())

    out = one(["x", email, f"mail {email}", "u-1", 7, "y"])
    assert list(out) == ["a.first", "a.note", sc.USER_HASH, "a.count", "a.last"]
    assert email not in out["a.note"] and out["a.count"] == 7 and out[sc.USER_HASH] == r.hasher.hex("u-1")
    # same key set, other value types: a long number in a scanned key is still scanned
    out = one([email, "plain", "plain", "u-2", 4111111111111111, "z"])
    assert email not in out["a.first"] and out["a.count"] != 4111111111111111
    assert list(out) == ["a.first", "a.note", sc.USER_HASH, "a.count", "a.last"]
    # and so is a card number held as a float
    out = one(["x", "plain", "plain", "u-3", 4111111111111111.0, "z"])
    assert out["a.count"] == r.text.value(4111111111111111, Counter())
    assert one(["x", "plain", "plain", "u-4", 0.5, "z"])["a.count"] == 0.5
    # under full only field rules act, and a map nothing changes comes back as the same object
    attrs = {"a.first": email, "a.count": 3}
    assert r.attributes(attrs, Policy.FULL, Record(Policy.FULL)) is attrs
    assert r.attributes(attrs, Policy.REDACTED, Record(Policy.REDACTED), "", r.memo())["a.first"] != email


def test_lower_case_ibans_but_not_pieces_of_hex_ids():
    assert found("iban de89 3704 0044 0532 0130 00 please") == [("iban", "de89 3704 0044 0532 0130 00")]
    assert found("ref de89370400440532013000") == [("iban", "de89370400440532013000")]
    # the same characters running on, as in a hash, are no IBAN
    assert found("sha de89370400440532013000ab12") == []
    # a hex id shaped like a Belgian IBAN (be + 2 digits + 12 characters) with the right checksum
    hex_id = next(f"be{c:02d}{n:012x}" for n in range(10**6, 10**7) for c in range(100)
                  if v.iban_ok(f"BE{c:02d}{n:012x}".upper()) and not f"{n:012x}".isdigit())
    assert found(f"span {hex_id} ok") == []
    assert found("konto be68 5390 0754 7034") == [("iban", "be68 5390 0754 7034")]


def test_cards_grouped_four_four_four_and_a_short_rest():
    assert found("diners 3056 9309 0259 04 ok") == [("card", "3056 9309 0259 04")]
    assert found("ref 4111 1111 1111 11 ok") == []  # Luhn-invalid


def test_an_email_with_its_at_written_as_a_json_escape_in_plain_text(redactor):
    token = redact(redactor, "bob@example.com")
    assert redact(redactor, "mail bob\\u0040example.com now") == f"mail {token} now"


def test_card_and_phone_numbers_held_as_floats(redactor):
    token = redact(redactor, "4111 1111 1111 1111")
    assert redactor.text.value(4111111111111111.0, Counter()) == token
    assert redactor.text.value(12345.0, Counter()) == 12345.0
    out = json.loads(redact(redactor, json.dumps({"card": 4111111111111111.0, "price": 123456789.5})))
    assert out == {"card": token, "price": 123456789.5}
    for written in ("4.111111111111111E15", "4.111111111111111e+15"):  # as Java and others write doubles
        assert json.loads(redact(redactor, f'{{"card": {written}}}')) == {"card": token}


def test_every_value_of_a_repeated_json_key_is_scanned(redactor):
    """Parsers keep only the last value of a repeated key; the first one must not pass unscanned."""
    args = ('{"email": "k3dup@canarymail.com", "card": "4111 1111 1111 1111", "key": '
            '"sk-proj-AbC123dEf456GhI789jKl012MnO", "email": "n/a", "card": "n/a", "key": "n/a", "note": "line\\n"}')
    e2e = ('{"email": "k3dupe2e@canarymail.com", "card": "4111 1111 1111 1111", "email": "n/a", "card": "n/a", '
           '"note": "a\\nb"}')
    secrets = ("k3dup", "4111", "sk-proj-AbC123")
    for raw in (args, e2e):
        counts = Counter()
        out = redactor.text.text(raw, counts)
        assert not any(x in out for x in secrets), out
        assert counts["email"] == 1 and counts["card"] == 1
        # every pair is kept, in order, and the text is still JSON
        pairs = json.loads(out, object_pairs_hook=list)
        assert [k for k, _ in pairs] == [k for k, _ in json.loads(raw, object_pairs_hook=list)]
        assert pairs[0][1].startswith("<EMAIL:") and pairs[1][1].startswith("<CARD:")
        msgs = json.dumps([{"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "charge",
                                                            "arguments": raw}]}])
        out = redact(redactor, msgs)
        inner = json.loads(out)[0]["parts"][0]["arguments"]
        assert not any(x in inner for x in secrets) and json.loads(inner, object_pairs_hook=list)[0][0] == "email"
    # a repeated key with nothing to find is still returned as sent
    plain = '{"a": "x", "a": "y\\n", "b": [{"c": 1, "c": "\\u00e9"}]}'
    assert redact(redactor, plain) is plain


@pytest.mark.parametrize("text", [
    # as the red-team tester sent them: `\n` written out (a repr), a PGP armor header with dots
    "key='-----BEGIN RSA PRIVATE KEY-----\\nMIIEowK3PEMBODYcanarySECRETmaterialAAAAB3NzaC1yc2E\\n"
    "-----END RSA PRIVATE KEY-----'",
    "key='-----BEGIN RSA PRIVATE KEY-----\\nMIIEowIBAAKCAQEAcanarypemBODYxyz\\n-----END RSA PRIVATE KEY-----'",
    "-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2.0.22\n\nlQOYBFK3PGPBODYcanarySECRETmaterial\n=abcd\n"
    "-----END PGP PRIVATE KEY BLOCK-----",
    "-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2.0.22\n\nlQOYBFcanaryPGPbody\n"
    "-----END PGP PRIVATE KEY BLOCK-----",
    "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,3F17F5316E2BAC89\n\ncanaryBODY\n"
    "-----END RSA PRIVATE KEY-----",
])
def test_a_private_key_block_is_replaced_from_header_to_end_line(redactor, text):
    key = text[text.index("-----BEGIN"):text.index("-----", text.index("-----END") + 5) + 5]
    token = redact(redactor, key)
    assert re.fullmatch(r"<PRIVATE_KEY:[0-9a-f]+>", token)
    assert redact(redactor, f"before {text} after") == f"before {text.replace(key, token)} after"
    # cut before its END line (a length limit): everything from BEGIN on goes
    cut = text[: text.index("-----END") - 3]
    out = redact(redactor, f"log: {cut}")
    assert re.fullmatch(r"log: (key=')?<PRIVATE_KEY:[0-9a-f]+>", out), out
    # inside JSON, the block ends with its string, cut or not, and the JSON still parses
    for raw in (json.dumps({"k": text, "n": "next"}), json.dumps({"k": cut, "n": "next\n"})):
        out = json.loads(redact(redactor, raw))
        assert re.fullmatch(r"(key=')?<PRIVATE_KEY:[0-9a-f]+>'?", out["k"]) and out["n"].startswith("next")


def test_json_escapes_hide_nothing_wherever_the_json_starts(redactor):
    """After a byte order mark or more than 64 blanks, or inside plain text, JSON escapes written out
    (`\\u0040`, `\\u002e`, `\\u0020`, `\\/`) must not hide a value."""
    email, card = redact(redactor, "k3bom@canarymail.com"), redact(redactor, "4111 1111 1111 1111")
    bom = "\ufeff" + '{"customer": "k3bom\\u0040canarymail\\u002ecom", "card": "4111\\u00201111\\u00201111\\u00201111"}'
    out = redact(redactor, bom)
    assert out.startswith("\ufeff") and json.loads(out[1:]) == {"customer": email, "card": card}
    for blanks in (" " * 70 + '{"email": "k3wsjson\\u0040canarymail\\u002ecom"}',
                   " " * 70 + '{"email": "k3wsjson\\u0040canarymail\\u002ecom", "card": '
                   '"4111\\u00201111\\u00201111\\u00201111"}'):
        out = json.loads(redact(redactor, blanks))
        assert out["email"] == redact(redactor, "k3wsjson@canarymail.com") and out.get("card", card) == card
    for text, secret in [
        ('upstream error {"dsn":"postgres:\\/\\/app:K3PhpEscPw77@db:5432\\/main"}', "K3PhpEscPw77"),
        ('request failed: {"url":"https:\\/\\/admin:K3EscapedPw99@db.internal\\/x"}', "K3EscapedPw99"),
    ]:
        out = redact(redactor, text)
        assert secret not in out and out.startswith(text[: text.index(secret)]), out
    # plain text: each value gets the token of the value itself, escapes around it stay as they were
    text = "note\\n4111 1111 1111 1111, mail k3bom\\u0040canarymail\\u002ecom \\ud83d\\ude00 C:\\Users\\x"
    assert redact(redactor, text) == f"note\\n{card}, mail {email} \\ud83d\\ude00 C:\\Users\\x"
    # the same text as a string inside JSON
    out = json.loads(redact(redactor, json.dumps({"msg": text, "dsn": "postgres:\\/\\/app:K3PhpEscPw77@db"})))
    assert out["msg"] == f"note\\n{card}, mail {email} \\ud83d\\ude00 C:\\Users\\x" and "K3Php" not in out["dsn"]
    plain = "no value here \\n \\u0040 C:\\temp"
    assert redact(redactor, plain) is plain
