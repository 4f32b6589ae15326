"""Helpers for the decoder tests: feed a stream whole, byte by byte, and split at every offset."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

from trio_stream.protocol import Event, SSEDecoder


def feed_chunks(
    chunks: Iterable[bytes], last_event_id: str = ""
) -> tuple[list[Event], SSEDecoder]:
    """Feed ``chunks`` in order to a new decoder; return every event and the decoder."""
    decoder = SSEDecoder(last_event_id)
    events: list[Event] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events, decoder


def split_at(stream: bytes, offsets: Iterable[int]) -> list[bytes]:
    """``stream`` cut at the given offsets (sorted, duplicates and out-of-range ignored)."""
    cuts = sorted({o for o in offsets if 0 < o < len(stream)})
    bounds = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


def every_chunking(stream: bytes) -> Iterable[list[bytes]]:
    """The stream whole, one byte at a time, and cut in two at every offset."""
    yield [stream]
    yield [stream[i : i + 1] for i in range(len(stream))]
    for i in range(len(stream) + 1):
        yield [stream[:i], stream[i:]]


def assert_decodes(
    stream: bytes,
    expected: Sequence[Event],
    *,
    last_event_id: str | None = None,
    retry: int | None = None,
    seed: str = "",
) -> None:
    """The stream decodes to ``expected`` (and the final decoder state) however it is chunked."""
    for chunks in every_chunking(stream):
        events, decoder = feed_chunks(chunks, seed)
        assert events == list(expected), chunks
        if last_event_id is not None:
            assert decoder.last_event_id == last_event_id, chunks
        assert decoder.retry == retry, chunks


def msg(data: str, event: str = "message", id: str = "", retry: int | None = None) -> Event:
    """A decoded event as the decoder reports it (type and id always filled in)."""
    return Event(data, event=event, id=id, retry=retry)
