"""Coverage-guided fuzzing of ``ChatChunkParser`` (and the SSE bytes before it) with atheris.

    python fuzz/chat_chunks.py -runs=100000

The first byte picks the mode: event data as text straight into the parser,
or raw bytes through ``SSEDecoder`` then the parser (the upstream reader's
pipeline). ``ChunkDecodeError``, ``IncompleteStreamError`` and
``SSEDecodeError`` are the documented rejections; anything else is a crash.
Not part of ``make test``.
"""

from __future__ import annotations

import sys

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports(include=["trio_stream"]):
    from trio_stream.protocol import (
        ChatChunkParser,
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

_DELTAS = (ContentDelta, ReasoningDelta, ToolCallDelta, FinishDelta, Usage, ErrorDelta)
_EVENT_TYPES = ["message", "error", None, "delta"]


def _parse(items: list[tuple[str, str | None]]) -> None:
    parser = ChatChunkParser()
    for data, event in items:
        try:
            deltas = parser.feed(data, event)
        except ChunkDecodeError:
            continue
        if not all(isinstance(delta, _DELTAS) for delta in deltas):
            raise AssertionError(f"an unexpected delta type in {deltas!r}")
    try:
        parser.end_of_stream()
    except IncompleteStreamError:
        if parser.finished:
            raise AssertionError("a finished stream reported as incomplete") from None


def test_one_input(data: bytes) -> None:
    """libFuzzer's entry point."""
    provider = atheris.FuzzedDataProvider(data)
    if provider.ConsumeBool():
        items = []
        for _ in range(provider.ConsumeIntInRange(1, 4)):
            event = provider.PickValueInList(_EVENT_TYPES)
            items.append(
                (provider.ConsumeUnicodeNoSurrogates(provider.ConsumeIntInRange(0, 512)), event)
            )
        _parse(items)
        return
    decoder = SSEDecoder(max_line_length=8192, max_event_size=16384)
    try:
        events = decoder.feed(provider.ConsumeBytes(atheris.ALL_REMAINING))
    except SSEDecodeError as exc:
        events = exc.events
    _parse([(event.data, event.event) for event in events])


def main() -> None:
    """Run libFuzzer with the command line's options."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
