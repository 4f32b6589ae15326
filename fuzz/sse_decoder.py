"""Coverage-guided fuzzing of ``SSEDecoder`` with atheris (libFuzzer).

    python fuzz/sse_decoder.py -runs=100000            # or -max_total_time=300
    python fuzz/sse_decoder.py corpus/sse -runs=100000  # keep what it finds

Each input picks limits and chunk sizes, then feeds the rest to a decoder,
whole and in chunks. Any exception other than ``SSEDecodeError`` is a crash,
as is a buffer over its limit, events that depend on the chunking, or a
broken decoder that accepts more input. Not part of ``make test``.
"""

from __future__ import annotations

import sys

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports(include=["trio_stream"]):
    from trio_stream.protocol import Event, SSEDecodeError, SSEDecoder


def _run(chunks: list[bytes], max_line: int, max_event: int) -> tuple[list[Event], bool]:
    decoder = SSEDecoder(max_line_length=max_line, max_event_size=max_event)
    events: list[Event] = []
    for chunk in chunks:
        try:
            got = decoder.feed(chunk)
        except SSEDecodeError as exc:
            events += exc.events
            try:
                decoder.feed(b"")
            except SSEDecodeError:
                return events, True
            raise AssertionError("a failed decoder accepted more input") from None
        # No public accessor for the buffered size: read the private counters.
        if decoder._pending_size > max_line or decoder._data_size > max_event:
            raise AssertionError("the decoder buffers more than its limits")
        for event in got:
            if len(event.data) >= max_event:
                raise AssertionError("an event larger than max_event_size")
            Event(event.data, event.event, event.id, event.retry)  # valid by Event's rules
        events += got
    return events, False


def test_one_input(data: bytes) -> None:
    """libFuzzer's entry point: one input, checked against the decoder's invariants."""
    provider = atheris.FuzzedDataProvider(data)
    max_line = provider.ConsumeIntInRange(1, 256)
    max_event = provider.ConsumeIntInRange(1, 512)
    step = provider.ConsumeIntInRange(1, 64)
    stream = provider.ConsumeBytes(atheris.ALL_REMAINING)
    whole = _run([stream], max_line, max_event)
    chunked = _run(
        [stream[i : i + step] for i in range(0, len(stream), step)], max_line, max_event
    )
    if whole[1] != chunked[1] or (not whole[1] and whole[0] != chunked[0]):
        raise AssertionError("the outcome depends on how the stream was chunked")


def main() -> None:
    """Run libFuzzer with the command line's options (``-runs=N``, a corpus directory...)."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
