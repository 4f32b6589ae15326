"""The sans-IO OpenAI chunk parser and encoder: plain synchronous tests."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest

from trio_stream.protocol import (
    DONE,
    ChatChunkEncoder,
    ChatChunkParser,
    ChatDelta,
    ChunkDecodeError,
    ContentDelta,
    ErrorDelta,
    FinishDelta,
    IncompleteStreamError,
    ReasoningDelta,
    SSEDecoder,
    ToolCallDelta,
    Usage,
    coalesce_deltas,
)

ROLE_CHUNK = (
    '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,'
    '"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},'
    '"finish_reason":null}],"usage":null}'
)


def chunk(delta: Mapping[str, object], finish_reason: str | None = None) -> str:
    return json.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
    )


def test_role_only_first_chunk_yields_nothing_but_records_metadata() -> None:
    parser = ChatChunkParser()
    assert parser.feed(ROLE_CHUNK) == []
    assert (parser.completion_id, parser.model, parser.created) == ("chatcmpl-1", "m", 1700000000)
    assert not parser.finished


def test_content_reasoning_and_finish() -> None:
    parser = ChatChunkParser()
    assert parser.feed(chunk({"reasoning_content": "hmm"})) == [ReasoningDelta("hmm")]
    assert parser.feed(chunk({"reasoning": "ok"})) == [ReasoningDelta("ok")]
    assert parser.feed(chunk({"content": "Hi"})) == [ContentDelta("Hi")]
    assert parser.feed(chunk({"content": None}, "stop")) == [FinishDelta("stop")]
    assert parser.finished
    assert parser.finish_reason == "stop"
    parser.end_of_stream()  # a finish_reason without [DONE] is a clean end


def test_usage_chunk_with_empty_or_null_choices() -> None:
    parser = ChatChunkParser()
    usage = {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
    expected = Usage(3, 5, 8)
    assert parser.feed(json.dumps({"id": "x", "choices": [], "usage": usage})) == [expected]
    assert parser.feed(json.dumps({"choices": None, "usage": usage})) == [expected]
    assert parser.usage == expected
    odd = {"prompt_tokens": 1, "completion_tokens": True, "total_tokens": "3"}
    assert parser.feed(json.dumps({"choices": [], "usage": odd})) == [Usage(1)]
    assert Usage(1).as_dict() == {"prompt_tokens": 1}


def test_usage_on_the_finish_chunk_comes_after_the_finish() -> None:
    data = json.loads(chunk({}, "length"))
    data["usage"] = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    assert ChatChunkParser().feed(json.dumps(data)) == [FinishDelta("length"), Usage(1, 2, 3)]


def test_done_and_data_after_it() -> None:
    parser = ChatChunkParser()
    assert parser.feed(DONE) == []
    assert parser.done
    assert parser.finished
    assert parser.feed(chunk({"content": "late"})) == []
    parser.end_of_stream()


def test_eof_without_finish_is_incomplete() -> None:
    parser = ChatChunkParser()
    parser.feed(chunk({"content": "cut"}))
    with pytest.raises(IncompleteStreamError):
        parser.end_of_stream()


@pytest.mark.parametrize(
    ("data", "event", "expected"),
    [
        ('{"error":{"message":"boom","type":"server_error","code":500}}', "message",
         ErrorDelta("boom", "server_error", "500")),
        ('{"error":"overloaded"}', "message", ErrorDelta("overloaded")),
        ('{"error":{"code":"x"}}', "message", ErrorDelta('{"code":"x"}', None, "x")),
        ('{"error":["a"]}', "message", ErrorDelta('["a"]')),
        ('{"message":"bad"}', "error", ErrorDelta("bad")),
        ("not json at all", "error", ErrorDelta("not json at all")),
    ],
)  # fmt: skip
def test_error_objects(data: str, event: str, expected: ErrorDelta) -> None:
    parser = ChatChunkParser()
    assert parser.feed(data, event) == [expected]
    assert parser.error == expected


@pytest.mark.parametrize(
    "data",
    ["{", "[1, 2]", '{"choices": {}}', '{"choices": [1]}', '{"choices": [{"delta": []}]}',
     '{"choices": [{"delta": {"tool_calls": [1]}}]}'],
)  # fmt: skip
def test_malformed_chunks_raise(data: str) -> None:
    with pytest.raises(ChunkDecodeError):
        ChatChunkParser().feed(data)


def test_tool_call_fragments() -> None:
    parser = ChatChunkParser()
    first = {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                             "function": {"name": "weather", "arguments": ""}}]}  # fmt: skip
    assert parser.feed(chunk(first)) == [ToolCallDelta(0, "call_1", "weather", "")]
    more = {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}
    assert parser.feed(chunk(more)) == [ToolCallDelta(0, None, None, '{"city":')]
    odd = {"tool_calls": [{"index": 1, "function": None}]}
    assert parser.feed(chunk(odd)) == [ToolCallDelta(1)]


def test_multiple_choices_keep_their_index() -> None:
    data = {
        "choices": [
            {"index": 0, "delta": {"content": "a"}, "finish_reason": None},
            {"index": 1, "delta": {"content": "b"}, "finish_reason": "stop"},
        ]
    }
    assert ChatChunkParser().feed(json.dumps(data)) == [
        ContentDelta("a", 0),
        ContentDelta("b", 1),
        FinishDelta("stop", 1),
    ]


def test_encoder_round_trips_through_the_parser() -> None:
    encoder = ChatChunkEncoder("chatcmpl-9", "model-x", 42)
    deltas: list[ChatDelta] = [
        ReasoningDelta("think"),
        ContentDelta("Hé"),
        ToolCallDelta(0, "call_1", "f", '{"a"'),
        ToolCallDelta(0, None, None, ":1}"),
        FinishDelta("tool_calls"),
        Usage(1, 2, 3),
    ]
    parser = ChatChunkParser()
    assert parser.feed(encoder.role_chunk()) == []
    got = [d for delta in deltas for d in parser.feed(encoder.encode(delta))]
    assert got == deltas
    assert (parser.completion_id, parser.model, parser.created) == ("chatcmpl-9", "model-x", 42)
    role = json.loads(encoder.role_chunk())
    assert role["object"] == "chat.completion.chunk"
    assert role["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert json.loads(encoder.encode(Usage(1, 2, 3)))["choices"] == []


def test_encoder_error_object() -> None:
    encoder = ChatChunkEncoder("c", "m", 0)
    assert json.loads(encoder.encode(ErrorDelta("x", "t", "c"))) == {
        "error": {"message": "x", "type": "t", "code": "c"}
    }
    assert json.loads(encoder.encode(ErrorDelta("x"))) == {"error": {"message": "x"}}


def test_coalesce_merges_neighbours_only() -> None:
    deltas: list[ChatDelta] = [
        ContentDelta("a"),
        ContentDelta("b"),
        ContentDelta("c", 1),
        ReasoningDelta("r"),
        ReasoningDelta("s"),
        ReasoningDelta("t", 1),
        ToolCallDelta(0, "id", "f", "{"),
        ToolCallDelta(0, None, None, "}"),
        ToolCallDelta(1, "id2", "g", ""),
        ContentDelta("d"),
        FinishDelta("stop"),
    ]
    assert coalesce_deltas(deltas) == [
        ContentDelta("ab"),
        ContentDelta("c", 1),
        ReasoningDelta("rs"),
        ReasoningDelta("t", 1),
        ToolCallDelta(0, "id", "f", "{}"),
        ToolCallDelta(1, "id2", "g", ""),
        ContentDelta("d"),
        FinishDelta("stop"),
    ]


def test_split_utf8_through_the_sse_decoder_at_every_offset() -> None:
    text = "Grüße 👋 日本"
    wire = (
        b"".join(f"data: {chunk({'content': ch})}\n\n".encode() for ch in text)
        + b"data: [DONE]\n\n"
    )
    for cut in range(len(wire) + 1):
        decoder, parser = SSEDecoder(), ChatChunkParser()
        got = []
        for piece in (wire[:cut], wire[cut:]):
            for event in decoder.feed(piece):
                got.extend(parser.feed(event.data, event.event))
        assert "".join(d.text for d in got if isinstance(d, ContentDelta)) == text
        assert parser.done
