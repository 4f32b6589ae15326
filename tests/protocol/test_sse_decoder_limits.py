"""SSEDecoder's bounds: line length, event size, arguments, and behaviour after a failure."""

from __future__ import annotations

from typing import Any

import pytest

from tests.protocol._sse_helpers import feed_chunks, msg
from trio_stream.protocol import (
    DEFAULT_MAX_EVENT_SIZE,
    DEFAULT_MAX_LINE_LENGTH,
    SSEDecodeError,
    SSEDecoder,
    TrioStreamError,
)


def test_error_is_a_library_error_and_a_value_error() -> None:
    assert issubclass(SSEDecodeError, TrioStreamError)
    assert issubclass(SSEDecodeError, ValueError)


def test_defaults() -> None:
    assert DEFAULT_MAX_LINE_LENGTH == 1024 * 1024
    assert DEFAULT_MAX_EVENT_SIZE >= DEFAULT_MAX_LINE_LENGTH


def test_line_at_the_limit_is_accepted() -> None:
    decoder = SSEDecoder(max_line_length=10)
    assert decoder.feed(b"data: 1234\n\n") == [msg("1234")]


def test_complete_line_over_the_limit_raises() -> None:
    decoder = SSEDecoder(max_line_length=10)
    with pytest.raises(SSEDecodeError, match="max_line_length=10"):
        decoder.feed(b"data: 12345\n\n")


def test_partial_line_over_the_limit_raises_before_it_ends() -> None:
    """Memory stays bounded: an endless line fails as soon as it crosses the limit."""
    decoder = SSEDecoder(max_line_length=10)
    for _ in range(5):
        decoder.feed(b"xx")
    with pytest.raises(SSEDecodeError, match="longer than max_line_length"):
        decoder.feed(b"x")


def test_line_over_the_limit_fed_in_pieces_raises_when_it_ends() -> None:
    decoder = SSEDecoder(max_line_length=10)
    decoder.feed(b"data: 1234")
    with pytest.raises(SSEDecodeError):
        decoder.feed(b"5\n")


def test_long_line_inside_a_large_chunk_raises() -> None:
    decoder = SSEDecoder(max_line_length=10)
    with pytest.raises(SSEDecodeError):
        decoder.feed(b"data: 1\n\n" * 3 + b"data: " + b"x" * 20 + b"\n\n")


def test_large_chunk_of_short_lines_is_fine() -> None:
    decoder = SSEDecoder(max_line_length=10)
    assert len(decoder.feed(b"data: 1\n\n" * 100)) == 100


def test_event_data_over_the_limit_raises() -> None:
    """The limit counts the standard's data buffer: values plus one LF each."""
    assert SSEDecoder(max_event_size=4).feed(b"data: abc\n\n") == [msg("abc")]
    with pytest.raises(SSEDecodeError, match="max_event_size=4"):
        SSEDecoder(max_event_size=4).feed(b"data: abcd\n\n")
    with pytest.raises(SSEDecodeError, match="max_event_size=4"):
        SSEDecoder(max_event_size=4).feed(b"data: a\ndata: bc\n\n")


def test_event_over_the_limit_line_by_line_raises() -> None:
    decoder = SSEDecoder(max_event_size=4)
    decoder.feed(b"data: a\n")
    decoder.feed(b"data: b\n")
    with pytest.raises(SSEDecodeError):
        decoder.feed(b"data: c\n")


def test_event_over_the_limit_after_other_fields_raises() -> None:
    with pytest.raises(SSEDecodeError):
        SSEDecoder(max_event_size=4).feed(b"data: a\n: comment\ndata: bcd\n\n")


def test_events_before_the_failure_are_kept_on_the_error() -> None:
    """Events completed in the same feed are on ``events``; last_event_id accounts for them."""
    decoder = SSEDecoder(max_event_size=5)
    with pytest.raises(SSEDecodeError) as info:
        decoder.feed(b"id: 1\ndata: a\n\nid: 2\ndata: toolong\n\n")
    assert info.value.events == [msg("a", id="1")]
    assert decoder.last_event_id == "1"


def test_events_before_a_slow_path_failure_are_kept() -> None:
    decoder = SSEDecoder(max_event_size=5)
    with pytest.raises(SSEDecodeError) as info:
        decoder.feed(b"data: a\n\nretry: 1\ndata: toolong\n\n")
    assert info.value.events == [msg("a")]


def test_every_later_feed_raises() -> None:
    """After a failure the stream cannot be resynchronised: the connection must be dropped."""
    decoder = SSEDecoder(max_line_length=4)
    with pytest.raises(SSEDecodeError):
        decoder.feed(b"data: x\n\n")
    with pytest.raises(SSEDecodeError, match="already failed"):
        decoder.feed(b"\n")


def test_linear_time_for_a_long_line_in_tiny_chunks() -> None:
    """Pieces of a partial line are kept in a list and joined once, not re-concatenated."""
    decoder = SSEDecoder()
    for _ in range(200_000):
        assert decoder.feed(b"x") == []
    assert decoder._pending_size == 200_000
    assert len(decoder._pending) <= 200_000 // 128 + 129  # joined in blocks, each char copied once
    assert decoder.feed(b"\n") == []
    assert decoder._pending == []


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\0b"])
def test_seed_id_must_be_sendable(bad: str) -> None:
    with pytest.raises(ValueError, match="last_event_id"):
        SSEDecoder(bad)


def test_seed_id_must_be_a_string() -> None:
    with pytest.raises(TypeError):
        SSEDecoder(5)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["max_line_length", "max_event_size"])
@pytest.mark.parametrize("value", [0, -1])
def test_limits_must_be_positive(name: str, value: int) -> None:
    kwargs: dict[str, Any] = {name: value}
    with pytest.raises(ValueError, match=name):
        SSEDecoder(**kwargs)


@pytest.mark.parametrize("name", ["max_line_length", "max_event_size"])
@pytest.mark.parametrize("value", [1.5, True, "10"])
def test_limits_must_be_ints(name: str, value: object) -> None:
    kwargs: dict[str, Any] = {name: value}
    with pytest.raises(TypeError, match=name):
        SSEDecoder(**kwargs)


def test_feed_returns_events_in_order_across_many_chunks() -> None:
    stream = b"".join(b"id: %d\ndata: %d\n\n" % (i, i) for i in range(1000))
    events, decoder = feed_chunks([stream[i : i + 7] for i in range(0, len(stream), 7)])
    assert [e.data for e in events] == [str(i) for i in range(1000)]
    assert decoder.last_event_id == "999"
