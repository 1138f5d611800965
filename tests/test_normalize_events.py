"""`messages_from_events`: deprecated GenAI events as log records (body) or span events (attributes)."""

from __future__ import annotations

import json

from spanhouse import semconv as sc
from spanhouse.normalize import messages_from_events


def test_log_record_bodies_in_order():
    content = messages_from_events(
        [
            {
                "name": sc.EVENT_GEN_AI_SYSTEM_MESSAGE,
                "attributes": {"gen_ai.system": "openai"},
                "body": {"content": "You are terse."},
            },
            {"name": sc.EVENT_GEN_AI_USER_MESSAGE, "body": {"content": "Weather in Oslo?"}},
            {
                "name": sc.EVENT_GEN_AI_ASSISTANT_MESSAGE,
                "body": {
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                        }
                    ],
                },
            },
            {"name": sc.EVENT_GEN_AI_TOOL_MESSAGE, "body": {"content": "rainy, 7C", "id": "call_1"}},
            {
                "event_name": sc.EVENT_GEN_AI_CHOICE,
                "body": json.dumps(
                    {"index": 0, "finish_reason": "stop", "message": {"content": "Rainy, 7C."}}
                ),
            },
            {"name": "some.other.event", "body": {"content": "ignored"}},
            "not even a mapping",
        ]
    )
    attrs = content.attributes()
    assert json.loads(attrs[sc.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "You are terse."}]
    assert json.loads(attrs[sc.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Oslo?"}]},
        {
            "role": "assistant",
            "parts": [
                {"type": "tool_call", "id": "call_1", "name": "weather", "arguments": {"city": "Oslo"}}
            ],
        },
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "rainy, 7C"}]},
    ]
    assert json.loads(attrs[sc.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Rainy, 7C."}], "finish_reason": "stop"}
    ]
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ["stop"]


def test_operation_details_attributes_are_copied_with_their_registry_types():
    details = {
        sc.GEN_AI_INPUT_MESSAGES: [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}],
        sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
        sc.GEN_AI_REQUEST_MAX_TOKENS: "256",
        "gen_ai.system": "openai",  # deprecated names are not copied as canonical values
        "vendor.thing": 1,
    }
    content = messages_from_events(
        [{"name": sc.EVENT_GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS, "attributes": details}]
    )
    assert content.attributes() == {
        sc.GEN_AI_INPUT_MESSAGES: '[{"role":"user","parts":[{"type":"text","content":"hi"}]}]',
        sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
        sc.GEN_AI_REQUEST_MAX_TOKENS: 256,
    }


def test_nothing_recognised_gives_empty_content():
    content = messages_from_events(
        [{"name": "x"}, {"name": sc.EVENT_GEN_AI_USER_MESSAGE, "body": None, "attributes": None}]
    )
    assert not content and content.attributes() == {}


def test_a_message_with_text_keeps_its_other_fields():
    # {content: text} plus one more key is not the plain {role, content} shape
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    content = messages_from_events(
        [
            {"name": sc.EVENT_GEN_AI_ASSISTANT_MESSAGE, "body": {"content": "Checking.", "tool_calls": [call]}},
            {"name": sc.EVENT_GEN_AI_CHOICE, "body": {"message": {"content": "Done.", "finish_reason": "stop"}}},
        ]
    )
    attrs = content.attributes()
    assert json.loads(attrs[sc.GEN_AI_INPUT_MESSAGES]) == [
        {
            "role": "assistant",
            "parts": [
                {"type": "text", "content": "Checking."},
                {"type": "tool_call", "id": "c1", "name": "f", "arguments": {}},
            ],
        }
    ]
    assert json.loads(attrs[sc.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Done."}], "finish_reason": "stop"}
    ]
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ["stop"]
