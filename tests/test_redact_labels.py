"""Keys as labels: an attribute key or a map key that names a secret or a phone number labels its
value, as a JSON key does, through the real `genai_redact` processor on spans and log records."""

from __future__ import annotations

import json

from test_genai_redact import DETECTIONS, env, log_records, make_batch, run

from spanhouse import semconv as sc

SECRET = "Tr0ub4dor-Example"
SECRET_KEYS = ["db.password", "api_key", "x-api-key", "authorization", "client_secret", "access_token",
               "app.refresh_token", "http.request.header.x-auth-token", "DB_PASSWORD", "openai.apikey"]


def test_an_attribute_key_naming_a_secret_labels_its_value():
    attrs = {key: SECRET for key in SECRET_KEYS}
    attrs["http.request.header.authorization"] = [f"Token {SECRET}"]
    attrs["db.passphrase"] = "correct horse battery staple"
    out = run(make_batch([env("production")], [{"attributes": attrs}])).attributes[0]
    assert SECRET not in repr(out) and "horse" not in repr(out)
    assert all(out[key].startswith("<PASSWORD:") for key in SECRET_KEYS)
    assert out["http.request.header.authorization"][0].startswith("Token <PASSWORD:")
    # the same secret gets the same token under any key, and in JSON text
    assert len({out[key] for key in SECRET_KEYS}) == 1
    doc = run(make_batch([env("production")], [{"attributes": {"tool.args": json.dumps({"pwd": SECRET})}}]))
    assert json.loads(doc.attributes[0]["tool.args"])["pwd"] == out["api_key"]
    assert out[DETECTIONS + "password"] == len(SECRET_KEYS) + 2
    assert set(SECRET_KEYS) <= set(out[sc.SPANHOUSE_REDACTION_MASKED_KEYS])
    # under full nothing is touched
    full = run(make_batch([env("staging")], [{"attributes": attrs}])).attributes[0]
    assert all(full[key] == SECRET for key in SECRET_KEYS)


def test_a_bearer_or_basic_value_gets_the_token_it_gets_in_text():
    bearer = "Bearer ya29Xq7Lm2Np4Rs6Tu8Vw0Yz1Ab3Cd5Ef7Gh9"
    basic = "Basic YWxhZGRpbjpvcGVuc2VzYW1l"
    out = run(make_batch([env("production")], [{"attributes": {
        "authorization": bearer, "proxy-authorization": basic, "note": f"header {bearer}; {basic}"}}]))
    attrs = out.attributes[0]
    assert attrs["authorization"].startswith("Bearer <BEARER_TOKEN:")
    assert attrs["proxy-authorization"].startswith("Basic <BASIC_AUTH:")
    assert attrs["note"] == f"header {attrs['authorization']}; {attrs['proxy-authorization']}"


def test_map_members_and_log_records_use_their_keys_as_labels():
    config = {"db": {"host": "db.internal", "password": SECRET}, "api_key": SECRET, "phone": "5551234567",
              "tokens": ["a", "b"], "max_tokens": 4096}
    spans = run(make_batch([env("production")], [{"attributes": {"app.config": config}}])).attributes[0]
    stored = spans["app.config"]
    assert stored["db"]["password"].startswith("<PASSWORD:") and stored["api_key"].startswith("<PASSWORD:")
    assert stored["phone"].startswith("<PHONE:") and stored["db"]["host"] == "db.internal"
    assert stored["tokens"] == ["a", "b"] and stored["max_tokens"] == 4096
    logs = run(log_records([env("production")], [
        {"body": {"user": "svc", "client_secret": SECRET}, "attributes": {"x-api-key": SECRET}}]))
    assert logs.body[0]["client_secret"].startswith("<PASSWORD:") and logs.body[0]["user"] == "svc"
    assert logs.attributes[0]["x-api-key"].startswith("<PASSWORD:")
    assert SECRET not in repr(logs.body) + repr(logs.attributes)


def test_a_phone_key_labels_a_number_without_separators():
    out = run(make_batch([env("production")], [{"attributes": {
        "user.phone": "5551234567", "customer.mobile": "+14155550123", "app.phone_number": 4155550123}}]))
    attrs = out.attributes[0]
    assert all(attrs[k].startswith("<PHONE:") for k in ("user.phone", "customer.mobile", "app.phone_number"))
    assert attrs[DETECTIONS + "phone"] == 3


def test_keys_without_a_secret_label_keep_their_values():
    attrs = {
        sc.GEN_AI_USAGE_INPUT_TOKENS: 123456789,  # a long count stays a number
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 64,
        "llm.token_count.prompt": 812,
        "gen_ai.request.max_tokens": 4096,
        "token": "Hello",  # a logprobs entry names its text `token`
        "next_page_token": "CgYIARAAGAE",
        "password_min_length": 12,
        "app.password_policy": "strong-only",
        "secret_name": "prod-db-credentials",
        "app.api_key_count": 3,
        "app.cell_count": 12345678,
        "tool.credentials": {"type": "service_account"},
        "authorization": "<redacted>",
        "db.password": "${DB_PASSWORD}",
    }
    out = run(make_batch([env("production")], [{"attributes": dict(attrs)}])).attributes[0]
    assert {k: out[k] for k in attrs} == attrs
    assert not any(k.startswith(DETECTIONS) for k in out)


def test_keys_are_still_scanned_for_values_of_their_own():
    out = run(make_batch([env("production")], [{"attributes": {
        "login of maria.garcia@example.com password": SECRET}}])).attributes[0]
    (key,) = [k for k in out if k.startswith("login of")]
    assert key.startswith("login of <EMAIL:") and key.endswith(" password") and out[key].startswith("<PASSWORD:")
    assert "maria" not in repr(out) and SECRET not in repr(out)


def test_the_labelled_scan_is_remembered_per_key_and_text():
    """The batch memo keys a labelled text by its label too: the same text under a plain key is
    left as it is, under a secret key replaced, in one batch."""
    spans = [{"attributes": {"app.note": SECRET}}, {"attributes": {"app.secret": SECRET}},
             {"attributes": {"app.note": SECRET}}]
    out = run(make_batch([env("production")], spans)).attributes
    assert out[0]["app.note"] == SECRET == out[2]["app.note"]
    assert out[1]["app.secret"].startswith("<PASSWORD:")
