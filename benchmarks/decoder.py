"""SSE decoding throughput: trio_stream's SSEDecoder against httpx-sse, same bytes, same run.

Run it with ``python -m benchmarks.decoder [--size-mb N] [--repeat N]``; the
benchmarks harness calls :func:`run`, which returns the figures as a dict.

The stream is deterministic (seeded) and mixed like real traffic: small JSON
events with ids and types, tiny LLM-style token events, large multi-line
events, and keep-alive comments. It is fed in 64 KiB chunks, what
``httpx.Response.aiter_bytes()`` hands over from a socket read.

Two ways of feeding are timed, each for both libraries:

* ``decoder``: the parsing pipelines alone. httpx-sse's is rebuilt from its
  own classes exactly as ``EventSource.aiter_sse`` chains them (httpx's
  ``TextDecoder`` and ``TextChunker``, then ``SSELineDecoder``, then
  ``line.rstrip("\\n")`` and ``SSEDecoder.decode``), with sync generators
  in place of its async ones, which only flatters httpx-sse.
* ``httpx``: through a real ``httpx.Response`` over the same chunks, the way a
  user consumes it: ``EventSource(response).iter_sse()`` against
  ``SSEDecoder.feed`` over ``response.iter_bytes()``.

Before timing, both must decode the same events (count and a CRC of types,
ids and data). httpx-sse emits an empty event for a keep-alive comment block
once any id has been seen (the standard dispatches nothing when the data
buffer is empty); those are dropped from its side of the comparison.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import random
import statistics
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx
from httpx._decoders import TextChunker, TextDecoder
from httpx_sse import EventSource
from httpx_sse._decoders import SSEDecoder as HttpxSSEDecoder
from httpx_sse._decoders import SSELineDecoder

from trio_stream.protocol import Event, SSEDecoder

CHUNK_SIZE = 64 * 1024

_WORDS = (
    "trio", "nursery", "cancel", "scope", "channel", "backpressure", "stream",
    "event", "token", "delta", "hypercorn", "websocket", "reconnect", "heartbeat",
    "übung", "naïve", "東京", "✓", "data", "id", "retry",
)  # fmt: skip


def build_stream(size_mb: int = 50, *, seed: int = 1, line_end: str = "\n") -> bytes:
    """A deterministic mixed event stream of about ``size_mb`` MB."""
    rng = random.Random(seed)
    target = size_mb * 1_000_000
    out: list[str] = []
    size = 0
    n = 0
    nl = line_end
    while size < target:
        n += 1
        kind = rng.random()
        if kind < 0.50:  # an application event: type, id, one line of JSON
            payload = {"seq": n, "user": rng.choice(_WORDS), "value": rng.random()}
            block = f"event: update{nl}id: {n}{nl}data: {json.dumps(payload)}{nl}{nl}"
        elif kind < 0.95:  # an LLM token delta, data only
            block = f'data: {{"delta":"{rng.choice(_WORDS)} "}}{nl}{nl}'
        elif kind < 0.97:  # a large multi-line event (a document, a log page)
            lines = [
                " ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 16)))
                for _ in range(rng.randint(10, 60))
            ]
            body = "".join(f"data: {line}{nl}" for line in lines)
            block = f"id: {n}{nl}{body}{nl}"
        else:  # a keep-alive comment
            block = f": keep-alive {n}{nl}{nl}"
        out.append(block)
        size += len(block)
    return "".join(out).encode()


def chunked(blob: bytes, size: int = CHUNK_SIZE) -> list[bytes]:
    """``blob`` cut into ``size``-byte chunks, as a socket read loop delivers it."""
    return [blob[i : i + size] for i in range(0, len(blob), size)]


def trio_stream_batches(chunks: Iterable[bytes]) -> Iterator[list[Event]]:
    """trio_stream's SSEDecoder over the chunks: one list of events per chunk."""
    decoder = SSEDecoder()
    for chunk in chunks:
        yield decoder.feed(chunk)


def httpx_sse_events(chunks: Iterable[bytes]) -> Iterator[Any]:
    """httpx-sse's pipeline over the chunks, chained as ``EventSource.iter_sse`` chains it."""
    text_decoder = TextDecoder(encoding="utf-8")
    text_chunker = TextChunker()
    line_decoder = SSELineDecoder()
    sse_decoder = HttpxSSEDecoder()

    def lines() -> Iterator[str]:  # httpx_sse._api._iter_sse_lines over Response.iter_text
        for chunk in chunks:
            for text in text_chunker.decode(text_decoder.decode(chunk)):
                yield from line_decoder.decode(text)
        for text in text_chunker.decode(text_decoder.flush()):
            yield from line_decoder.decode(text)
        for text in text_chunker.flush():
            yield from line_decoder.decode(text)
        yield from line_decoder.flush()

    for line in lines():
        sse = sse_decoder.decode(line.rstrip("\n"))
        if sse is not None:
            yield sse


def _response(chunks: list[bytes]) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=iter(chunks))


def trio_stream_batches_httpx(chunks: list[bytes]) -> Iterator[list[Event]]:
    """trio_stream's decoder fed from ``httpx.Response.iter_bytes()``, as its client does."""
    return trio_stream_batches(_response(chunks).iter_bytes())


def httpx_sse_events_httpx(chunks: list[bytes]) -> Iterator[Any]:
    """httpx-sse's ``EventSource.iter_sse()`` over an ``httpx.Response``."""
    return EventSource(_response(chunks)).iter_sse()


def _count_batches(batches: Iterator[list[Event]]) -> int:
    count = 0
    for batch in batches:
        count += len(batch)
    return count


def _count_events(events: Iterator[Any]) -> int:
    count = 0
    for _ in events:
        count += 1
    return count


def fingerprint(events: Iterable[Any]) -> tuple[int, int]:
    """(count, CRC-32 of type/id/data) of the events that carry data."""
    count = 0
    crc = 0
    for event in events:
        if event.data == "":
            continue  # see the module docstring: httpx-sse's keep-alive events
        count += 1
        crc = zlib.crc32(f"{event.event}\0{event.id}\0{event.data}\0".encode(), crc)
    return count, crc


_Timed = Callable[[list[bytes]], int]

_MODES: dict[str, tuple[_Timed, _Timed]] = {
    "decoder": (
        lambda chunks: _count_batches(trio_stream_batches(chunks)),
        lambda chunks: _count_events(httpx_sse_events(chunks)),
    ),
    "httpx": (
        lambda chunks: _count_batches(trio_stream_batches_httpx(chunks)),
        lambda chunks: _count_events(httpx_sse_events_httpx(chunks)),
    ),
}


def _verify(chunks: list[bytes]) -> tuple[int, int]:
    ours = fingerprint(itertools.chain.from_iterable(trio_stream_batches(chunks)))
    theirs = fingerprint(httpx_sse_events(chunks))
    if ours != theirs:
        raise AssertionError(f"decoders disagree: trio_stream {ours}, httpx-sse {theirs}")
    via_httpx = (
        fingerprint(itertools.chain.from_iterable(trio_stream_batches_httpx(chunks))),
        fingerprint(httpx_sse_events_httpx(chunks)),
    )
    if via_httpx != (ours, ours):
        raise AssertionError(f"decoding through httpx.Response changed the events: {via_httpx}")
    return ours


def run(size_mb: int = 50, repeat: int = 5, *, line_end: str = "\n") -> dict[str, Any]:
    """Time both decoders on the same ~``size_mb`` MB stream; return the figures.

    Figures are MB/s (10**6 bytes) from the median of ``repeat`` runs, for
    the ``decoder`` and ``httpx`` feeding modes (see the module docstring),
    with the ratio trio_stream / httpx-sse for each. Times are the process's
    CPU time, and the two libraries take turns, so that other work on a
    shared machine disturbs both alike.
    """
    blob = build_stream(size_mb, line_end=line_end)
    chunks = chunked(blob)
    count, _ = _verify(chunks)
    mb = len(blob) / 1e6
    result: dict[str, Any] = {
        "bytes": len(blob),
        "events": count,
        "chunk_size": CHUNK_SIZE,
        "repeat": repeat,
        "line_end": line_end,
    }
    for mode, (ours, theirs) in _MODES.items():
        times: dict[str, list[float]] = {"ours": [], "theirs": []}
        for _ in range(repeat):
            for name, fn in (("ours", ours), ("theirs", theirs)):
                gc.collect()
                start = time.process_time()
                fn(chunks)
                times[name].append(time.process_time() - start)
        ours_mb_s = mb / statistics.median(times["ours"])
        theirs_mb_s = mb / statistics.median(times["theirs"])
        result[mode] = {
            "trio_stream_mb_s": round(ours_mb_s, 1),
            "httpx_sse_mb_s": round(theirs_mb_s, 1),
            "ratio": round(ours_mb_s / theirs_mb_s, 2),
        }
    return result


def format_table(result: dict[str, Any]) -> str:
    """The figures of :func:`run` as a small markdown table."""
    rows = [
        "| feeding | trio_stream MB/s | httpx-sse MB/s | ratio |",
        "|---|---:|---:|---:|",
    ]
    for mode in ("decoder", "httpx"):
        r = result[mode]
        rows.append(
            f"| {mode} | {r['trio_stream_mb_s']} | {r['httpx_sse_mb_s']} | {r['ratio']}x |"
        )
    ending = "CRLF" if result["line_end"] == "\r\n" else "LF"
    rows.append(
        f"\n{result['bytes'] / 1e6:.1f} MB, {result['events']} events, {ending} line ends, "
        f"{result['chunk_size'] // 1024} KiB chunks, median CPU time of {result['repeat']} runs"
    )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    """Command line entry point: run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mb", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--crlf", action="store_true", help="use CRLF line ends")
    args = parser.parse_args(argv)
    result = run(args.size_mb, args.repeat, line_end="\r\n" if args.crlf else "\n")
    print(format_table(result))


if __name__ == "__main__":
    main()
