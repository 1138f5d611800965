"""Shapes of sensitive values the detectors once missed, through the real `genai_redact` processor:
cards written with dots, labelled phone numbers without separators, AWS secret keys right after their
key id; and their near misses, which stay as sent."""

from __future__ import annotations

import json

from test_genai_redact import DETECTIONS, env, make_batch, run

AWS_ID, AWS_SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def _redacted(value) -> dict:
    return run(make_batch([env("production")], [{"attributes": {"tool.output": value}}])).attributes[0]


def test_a_card_written_with_dots_is_replaced_with_the_token_of_its_digits():
    out = _redacted("card on file: 4111.1111.1111.1111, Amex 3714.496353.98431")
    assert "4111" not in out["tool.output"] and "98431" not in out["tool.output"]
    spaced = _redacted("card on file: 4111 1111 1111 1111, Amex 3714 496353 98431")["tool.output"]
    assert out["tool.output"] == spaced and out[DETECTIONS + "card"] == 2


def test_dotted_numbers_that_are_no_card_stay():
    for text in ("version 1.4111.1111.1111.1111", "4111.1111.1111.1112 (Luhn fails)",
                 "build 10.0.19041.1234", "4.111.111.111.111.111 units", "4111.1111.1111.1111.2222"):
        assert _redacted(text)["tool.output"] == text, text


def test_labelled_phone_numbers_without_separators_are_replaced():
    for text, number in (("phone: 5551234567", "5551234567"), ("customer_phone=+14155550123&plan=pro", "4155550123"),
                         (json.dumps({"mobile": "+14155550123"}), "4155550123"),
                         (json.dumps({"contact": {"phone": 4155550123}}), "4155550123")):
        out = _redacted(text)
        assert number not in out["tool.output"] and out[DETECTIONS + "phone"] == 1, text
    assert _redacted(json.dumps({"phone_verified": True, "input_tokens": 123456789}))["tool.output"] == json.dumps(
        {"phone_verified": True, "input_tokens": 123456789})


def test_an_aws_secret_key_right_after_its_key_id_is_replaced():
    for text in (f"Access key ID,Secret access key\n{AWS_ID},{AWS_SECRET}", f"{AWS_ID} {AWS_SECRET}",
                 f"creds: '{AWS_ID}', '{AWS_SECRET}'", f"{AWS_ID}\t{AWS_SECRET}\tactive"):
        out = _redacted(text)["tool.output"]
        assert AWS_SECRET not in out and AWS_ID not in out and out.count("<AWS_KEY:") == 2, text


def test_a_hash_or_a_longer_blob_after_a_key_id_stays():
    sha1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
    blob = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA"
    for other in (sha1, sha1.upper(), blob, "ThisIsACamelCaseIdentifierWithoutDigitsX"):
        out = _redacted(f"{AWS_ID} {other}")["tool.output"]
        assert out.endswith(" " + other) and out.startswith("<AWS_KEY:"), other


def test_an_address_labelled_a_version_stays_and_an_address_is_replaced():
    """`1.2.3.4` is also a valid IPv4 address: after a version label (in text, or as the key of its
    attribute) it is a version; anywhere else it is an address."""
    for text in ("upgraded to version 1.2.3.4", "Version: 10.0.3.1", "build=2.10.3.1", "firmware 4.1.20.7"):
        assert _redacted(text)["tool.output"] == text, text
    keyed = run(make_batch([env("production")], [{"attributes": {"app.lib_version": "1.2.3.4"}}])).attributes[0]
    assert keyed["app.lib_version"] == "1.2.3.4"
    for text in ("server at 10.1.2.3", "client 192.168.1.20 on version 3", "version 2 of host 10.1.2.3"):
        out = _redacted(text)
        assert out["tool.output"].count("<IPV4:") == 1 and out[DETECTIONS + "ipv4"] == 1, text


def test_a_secret_after_an_authorization_scheme_is_replaced_not_the_scheme():
    """`api_key: Token abcd…` lost the word `Token` and kept the key; an Authorization header written
    out in text (a log line, a pasted curl command) names its scheme before the secret."""
    for text, secret in (("api_key: Token abcd1234efgh5678", "abcd1234efgh5678"),
                         ("Authorization: Token 9f8e7d6c5b4a39281706f5e4d3c2b1a0", "9f8e7d6c5b4a39281706f5e4d3c2b1a0"),
                         ("curl -H 'Authorization: ApiKey AbCdEf123456789'", "AbCdEf123456789")):
        out = _redacted(text)
        assert secret not in out["tool.output"] and out[DETECTIONS + "password"] == 1, text
        assert ("Token" in out["tool.output"]) == ("Token" in text), text
    for text in ("the authorization: token based auth is documented", "Authorization: Token"):
        assert _redacted(text)["tool.output"] == text, text
