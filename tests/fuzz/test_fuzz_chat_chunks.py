"""Fuzz ``ChatChunkParser``: any event data, any JSON shape, any bytes through the decoder.

Invariant: ``feed`` returns typed deltas or raises ``ChunkDecodeError``;
``end_of_stream`` returns or raises ``IncompleteStreamError``; nothing else
escapes (an upstream is untrusted input), and no example hangs.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz._fuzz_support import FUZZ_SETTINGS, hang_guard
from trio_stream.protocol import (
    ChatChunkEncoder,
    ChatChunkParser,
    ChatDelta,
    ChunkDecodeError,
    ContentDelta,
    ErrorDelta,
    FinishDelta,
    IncompleteStreamError,
    ReasoningDelta,
    SSEDecodeError,
    SSEDecoder,
    ToolCallDelta,
    Usage,
)

_DELTA_TYPES = (ContentDelta, ReasoningDelta, ToolCallDelta, FinishDelta, Usage, ErrorDelta)
_KEYS = [
    "id", "model", "created", "choices", "usage", "error", "index", "delta", "content",
    "reasoning_content", "reasoning", "tool_calls", "function", "name", "arguments",
    "finish_reason", "role", "message", "type", "code", "prompt_tokens", "completion_tokens",
    "total_tokens",
]  # fmt: skip

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
_json_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(_KEYS), st.text(max_size=4)), inner, max_size=5),
    ),
    max_leaves=8,
)
# Shapes close to real chunks, so the parser's deeper branches get bent inputs.
_choices = st.lists(
    st.one_of(
        _json_values,
        st.fixed_dictionaries(
            {},
            optional={
                "index": _json_values,
                "delta": st.one_of(
                    _json_values,
                    st.fixed_dictionaries({}, optional=dict.fromkeys(_KEYS[8:13], _json_values)),
                ),
                "finish_reason": _json_values,
            },
        ),
    ),
    max_size=3,
)
_chunk_objects = st.fixed_dictionaries(
    {},
    optional={
        "id": _json_values,
        "model": _json_values,
        "created": _json_values,
        "choices": st.one_of(_choices, _json_values),
        "usage": _json_values,
        "error": _json_values,
    },
)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


_data = st.one_of(
    st.text(max_size=60),
    _json_values.map(json.dumps),
    _chunk_objects.map(json.dumps),
    st.integers(1, 200_000).map(_nested),  # deep nesting: past the recursion limit
    st.integers(4000, 5000).map(lambda n: "1" * n),  # past int()'s digit limit
    st.sampled_from(["[DONE]", " [DONE] \n", "null", "{}", '{"error": null}']),
)
_event_types = st.one_of(st.none(), st.sampled_from(["message", "error", "delta"]))


def _assert_deltas(deltas: list[ChatDelta]) -> None:
    assert isinstance(deltas, list)
    for delta in deltas:
        assert isinstance(delta, _DELTA_TYPES)


def _feed_all(parser: ChatChunkParser, items: list[tuple[str, str | None]]) -> None:
    for data, event in items:
        with contextlib.suppress(ChunkDecodeError):
            _assert_deltas(parser.feed(data, event))
    try:
        parser.end_of_stream()
    except IncompleteStreamError:
        assert not parser.finished


@FUZZ_SETTINGS
@given(st.lists(st.tuples(_data, _event_types), max_size=5))
@example([(_nested(100_000), None)])
@example([(_nested(5000), "error")])
def test_any_event_data_gives_deltas_or_chunk_decode_error(
    items: list[tuple[str, str | None]],
) -> None:
    with hang_guard():
        _feed_all(ChatChunkParser(), items)


@FUZZ_SETTINGS
@given(st.binary(max_size=3000) | _data.map(lambda d: f"data: {d}\n\n".encode()))
def test_any_bytes_through_decoder_and_parser(stream: bytes) -> None:
    # The upstream reader's pipeline: bytes -> SSEDecoder -> ChatChunkParser.
    with hang_guard():
        decoder = SSEDecoder(max_line_length=4096, max_event_size=8192)
        try:
            events = decoder.feed(stream)
        except SSEDecodeError as exc:
            events = exc.events
        _feed_all(ChatChunkParser(), [(event.data, event.event) for event in events])


def test_deeply_nested_chunk_is_a_chunk_decode_error() -> None:
    # Regression: json.loads raised RecursionError, which escaped the parser.
    with pytest.raises(ChunkDecodeError):
        ChatChunkParser().feed(_nested(100_000))
    error = ChatChunkParser().feed(_nested(100_000), "error")
    assert isinstance(error[0], ErrorDelta)


_text = st.text(min_size=1, max_size=20)
_small = st.integers(0, 5)
_deltas: st.SearchStrategy[Any] = st.one_of(
    st.builds(ContentDelta, _text, _small),
    st.builds(ReasoningDelta, _text, _small),
    st.builds(ToolCallDelta, _small, st.none() | _text, st.none() | _text, st.text(), _small),
    st.builds(FinishDelta, _text, _small),
    st.builds(Usage, st.none() | _small, st.none() | _small, st.none() | _small),
    st.builds(ErrorDelta, st.text(), st.none() | _text, st.none() | _text),
)


@FUZZ_SETTINGS
@given(_deltas)
def test_encoded_deltas_parse_back_to_themselves(delta: ChatDelta) -> None:
    encoder = ChatChunkEncoder("chatcmpl-1", "model", 1)
    assert ChatChunkParser().feed(encoder.encode(delta)) == [delta]
