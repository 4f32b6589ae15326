"""Fuzz ``SSEDecoder``: any bytes, cut anywhere, under small and default limits.

Invariant: ``feed`` returns events or raises ``SSEDecodeError`` (and keeps
raising it); nothing else escapes, no example hangs, and what the decoder
buffers between feeds never exceeds ``max_line_length`` (an unterminated line)
or ``max_event_size`` (the data of an undispatched event).

SSEDecoder has no public accessor for its buffered size, so the checks read
its private counters (``_pending_size``, ``_data_size``) and the buffers
themselves; a rename there shows up here first.
"""

from __future__ import annotations

import itertools
import tracemalloc

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz._fuzz_support import FUZZ_SETTINGS, hang_guard
from trio_stream.protocol import (
    DEFAULT_MAX_EVENT_SIZE,
    DEFAULT_MAX_LINE_LENGTH,
    Event,
    SSEDecodeError,
    SSEDecoder,
)

# Pieces that steer random streams into every branch: field names with and
# without values, all three line ends, BOMs, NUL, invalid and split UTF-8,
# retry values too long for int(), and the blank line that dispatches.
_TOKENS = [
    b"data:",
    b"data: ",
    b"id:",
    b"id: 7",
    b"event:",
    b"event: x",
    b"retry:",
    b"retry: 1500",
    b"retry: " + b"9" * 5000,
    b":comment",
    b"\n",
    b"\r",
    b"\r\n",
    b"\n\n",
    b"\xef\xbb\xbf",
    b"\xef\xbb",
    b"\0",
    b"\xff\xfe",
    b"\xe6\x9d",
    b"\xf0\x9f\x8e\x89",
    b"a",
    b"abcdefgh" * 8,
    b" ",
]

_token_streams = st.lists(st.sampled_from(_TOKENS), max_size=80).map(b"".join)
_streams = st.one_of(st.binary(max_size=2000), _token_streams)
_line_limits = st.one_of(st.integers(1, 64), st.just(DEFAULT_MAX_LINE_LENGTH))
_event_limits = st.one_of(st.integers(1, 160), st.just(DEFAULT_MAX_EVENT_SIZE))


def _chunks(stream: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted({c % (len(stream) + 1) for c in cuts}), len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


def _assert_within_limits(decoder: SSEDecoder, max_line: int, max_event: int) -> None:
    # O(1) per feed: fed byte by byte, the buffers hold thousands of pieces.
    assert decoder._pending_size <= max_line
    assert decoder._data_size <= max_event
    assert len(decoder._event_type) <= max_line
    assert len(decoder._id_buffer) <= max_line


def _assert_counters_match_buffers(decoder: SSEDecoder) -> None:
    pending: list[str] = decoder._pending
    data: list[str] = decoder._data
    assert decoder._pending_size == sum(map(len, pending))
    assert decoder._data_size == sum(len(value) + 1 for value in data)


def _assert_valid(events: list[Event], max_event: int) -> None:
    for event in events:
        assert isinstance(event, Event)
        assert len(event.data) <= max_event - 1  # the standard's buffer adds one LF
        # Decoded events obey Event's own rules: they can be re-encoded safely.
        Event(event.data, event.event, event.id, event.retry)


def _run(chunks: list[bytes], max_line: int, max_event: int) -> tuple[list[Event], bool]:
    """Feed ``chunks``; the events (including those a failing feed completed) and if it failed."""
    decoder = SSEDecoder(max_line_length=max_line, max_event_size=max_event)
    events: list[Event] = []
    for chunk in chunks:
        try:
            got = decoder.feed(chunk)
        except SSEDecodeError as exc:
            _assert_valid(exc.events, max_event)
            events += exc.events
            assert not decoder._pending
            assert not decoder._data
            with pytest.raises(SSEDecodeError):
                decoder.feed(b"")  # a broken stream stays broken
            return events, True
        _assert_valid(got, max_event)
        _assert_within_limits(decoder, max_line, max_event)
        events += got
    _assert_counters_match_buffers(decoder)
    return events, False


@FUZZ_SETTINGS
@given(_streams, st.lists(st.integers(0, 10_000), max_size=12), _line_limits, _event_limits)
@example(b"data: " + b"x" * 20 + b"\n\n", [7], 10, 1000)
@example(b"data: ab\ndata: cd\n\n", [], 100, 5)
@example(b"data:\xf0\x9f\x8e", [8], 3, 100)
def test_any_bytes_are_decoded_or_rejected_within_limits(
    stream: bytes, cuts: list[int], max_line: int, max_event: int
) -> None:
    with hang_guard():
        whole, whole_failed = _run([stream], max_line, max_event)
        chunked, chunked_failed = _run(_chunks(stream, cuts), max_line, max_event)
        by_byte, by_byte_failed = _run(
            [stream[i : i + 1] for i in range(len(stream))], max_line, max_event
        )
    # Whether a limit is broken does not depend on how the bytes were cut;
    # without a failure, neither do the events.
    assert whole_failed == chunked_failed == by_byte_failed
    if not whole_failed:
        assert whole == chunked == by_byte


@FUZZ_SETTINGS
@given(_streams, st.lists(st.integers(0, 10_000), max_size=12))
def test_decoded_events_survive_an_encode_decode_round_trip(
    stream: bytes, cuts: list[int]
) -> None:
    with hang_guard():
        events, failed = _run(_chunks(stream, cuts), DEFAULT_MAX_LINE_LENGTH, 2**20)
        assert not failed
        for event in events:
            again = SSEDecoder().feed(
                Event(event.data, event.event, event.id, event.retry).encode()
            )
            assert again == [event]


@FUZZ_SETTINGS
@given(st.integers(1, 48), st.integers(1, 96), st.integers(1, 7), st.integers(0, 3))
def test_oversized_lines_and_events_fail_however_they_arrive(
    max_line: int, max_event: int, chunk_size: int, shape: int
) -> None:
    # Streams built to cross a limit by exactly one character, in every shape
    # the decoder has a separate path for.
    streams = [
        b"data: " + b"x" * max_line + b"\n\n",  # a complete long line
        b":" + b"c" * max_line,  # an unterminated long comment
        b"data: x\n" * (max_event // 2 + 1) + b"\n",  # many short data lines
        b"event: t\r" + b"data: " + b"y" * max_event + b"\r\n\r\n",  # the line-by-line path
    ]
    stream = streams[shape]
    max_event_for_shape = 2 * (max_event // 2 + 1) - 1 if shape == 2 else max_event
    max_line_for_shape = max_line if shape in (0, 1) else len(stream)
    with hang_guard():
        chunks = [stream[i : i + chunk_size] for i in range(0, len(stream), chunk_size)]
        _, failed = _run(chunks, max_line_for_shape, max_event_for_shape)
    assert failed


@pytest.mark.parametrize("chunk_size", [1, 2, 7])
def test_a_line_trickling_in_tiny_chunks_costs_memory_near_its_length(chunk_size: int) -> None:
    # Regression: every chunk of an unterminated line stayed a str of its own
    # in the pending list, about 50 bytes of overhead each: a 1 MiB line sent
    # 2 bytes at a time held 30 MiB. The limit counts characters; memory must
    # stay within a small factor of it.
    limit = 32 * 1024
    decoder = SSEDecoder(max_line_length=limit)
    chunk = b"x" * chunk_size
    tracemalloc.start()
    try:
        for _ in range((limit - 6) // chunk_size):
            decoder.feed(chunk)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decoder._pending_size > limit - 6 - chunk_size
    assert held < 3 * limit
