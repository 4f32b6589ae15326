"""The sans-IO AI SDK UI message stream encoder: plain synchronous tests."""

from __future__ import annotations

import json
from typing import Any

import pytest

from trio_stream.protocol import (
    UI_MESSAGE_STREAM_HEADERS,
    UI_PART_TYPES,
    ContentDelta,
    FinishDelta,
    ReasoningDelta,
    ToolCallDelta,
    UIMessageStreamEncoder,
    Usage,
    encode_ui_part,
    ui_finish_reason,
    ui_messages_to_openai,
)


def types(parts: list[dict[str, Any]]) -> list[str]:
    return [part["type"] for part in parts]


def test_text_answer_part_sequence() -> None:
    encoder = UIMessageStreamEncoder("msg-1")
    parts = encoder.start()
    for text in ["Hel", "lo"]:
        parts += encoder.feed(ContentDelta(text))
    parts += encoder.feed(FinishDelta("stop"))  # the finish reason is given to finish()
    parts += encoder.finish("stop")
    assert parts == [
        {"type": "start", "messageId": "msg-1"},
        {"type": "text-start", "id": "text-1"},
        {"type": "text-delta", "id": "text-1", "delta": "Hel"},
        {"type": "text-delta", "id": "text-1", "delta": "lo"},
        {"type": "text-end", "id": "text-1"},
        {"type": "finish", "finishReason": "stop"},
    ]
    assert encoder.finished
    assert encoder.finish() == []
    assert encoder.error("x") == []
    assert encoder.feed(ContentDelta("x")) == []
    assert ("x-vercel-ai-ui-message-stream", "v1") in UI_MESSAGE_STREAM_HEADERS


def test_reasoning_then_text_switches_parts() -> None:
    encoder = UIMessageStreamEncoder()
    parts = encoder.start()
    parts += encoder.feed(ReasoningDelta("think"))
    parts += encoder.feed(ContentDelta("answer"))
    parts += encoder.feed(ReasoningDelta("more"))
    parts += encoder.finish("length", message_metadata={"usage": {"total_tokens": 3}})
    assert types(parts) == [
        "start",
        "reasoning-start",
        "reasoning-delta",
        "reasoning-end",
        "text-start",
        "text-delta",
        "text-end",
        "reasoning-start",
        "reasoning-delta",
        "reasoning-end",
        "finish",
    ]
    assert parts[0] == {"type": "start"}
    assert parts[-1] == {
        "type": "finish",
        "finishReason": "length",
        "messageMetadata": {"usage": {"total_tokens": 3}},
    }
    assert len({p["id"] for p in parts if "id" in p}) == 3


def test_error_closes_open_part_then_error_then_finish() -> None:
    encoder = UIMessageStreamEncoder()
    encoder.start()
    encoder.feed(ContentDelta("partial"))
    assert encoder.error("The model failed.") == [
        {"type": "text-end", "id": "text-1"},
        {"type": "error", "errorText": "The model failed."},
        {"type": "finish", "finishReason": "error"},
    ]


def test_tool_calls_stream_and_complete() -> None:
    encoder = UIMessageStreamEncoder()
    parts = encoder.feed(ContentDelta("Let me check."))
    parts += encoder.feed(ToolCallDelta(0, "call_1", "weather", '{"city"'))
    parts += encoder.feed(ToolCallDelta(0, None, None, ':"Oslo"}'))
    parts += encoder.feed(ToolCallDelta(1, None, None, "{not json"))
    parts += encoder.feed(ToolCallDelta(2, "call_3", "noargs"))
    parts += encoder.feed(Usage(1, 2, 3))
    parts += encoder.finish("tool_calls")
    assert types(parts) == [
        "text-start",
        "text-delta",
        "text-end",
        "tool-input-start",
        "tool-input-delta",
        "tool-input-delta",
        "tool-input-start",
        "tool-input-delta",
        "tool-input-start",
        "tool-input-available",
        "tool-input-error",
        "tool-input-available",
        "finish",
    ]
    available = parts[9]
    assert available["input"] == {"city": "Oslo"}
    assert available["toolName"] == "weather"
    assert parts[6]["toolName"] == "tool"
    assert parts[6]["toolCallId"] == "call-2"
    assert parts[10]["input"] == "{not json"
    assert parts[11]["input"] == {}
    assert parts[-1]["finishReason"] == "tool-calls"


def test_other_choices_are_ignored() -> None:
    assert UIMessageStreamEncoder().feed(ContentDelta("x", choice=1)) == []


@pytest.mark.parametrize(
    ("reason", "expected"),
    [("stop", "stop"), ("length", "length"), ("content_filter", "content-filter"),
     ("tool_calls", "tool-calls"), ("function_call", "tool-calls"), (None, "unknown"),
     ("weird", "other")],
)  # fmt: skip
def test_finish_reason_mapping(reason: str | None, expected: str) -> None:
    assert ui_finish_reason(reason) == expected


def test_encode_ui_part_refuses_unknown_types() -> None:
    assert json.loads(encode_ui_part({"type": "text-delta", "id": "t", "delta": "é"})) == {
        "type": "text-delta",
        "id": "t",
        "delta": "é",
    }
    assert encode_ui_part({"type": "data-weather", "data": 1})
    for bad in ({"type": "text"}, {"type": 3}, {}):
        with pytest.raises(ValueError, match="unknown"):
            encode_ui_part(bad)
    assert "text-delta" in UI_PART_TYPES


def test_ui_messages_to_openai() -> None:
    messages = [
        {"id": "1", "role": "system", "parts": [{"type": "text", "text": "Be brief."}]},
        {
            "id": "2",
            "role": "user",
            "parts": [
                {"type": "text", "text": "Hello "},
                {"type": "file", "url": "x"},
                {"type": "text", "text": "there"},
            ],
        },
        {"role": "assistant", "content": "v4 style"},
    ]
    assert ui_messages_to_openai(messages) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello there"},
        {"role": "assistant", "content": "v4 style"},
    ]


@pytest.mark.parametrize(
    "messages",
    [None, [], ["x"], [{"role": "tool", "parts": []}], [{"role": "user"}]],
)
def test_ui_messages_to_openai_rejects_bad_shapes(messages: object) -> None:
    with pytest.raises(ValueError, match="message"):
        ui_messages_to_openai(messages)
