"""What gzip with a flush per write costs and saves on an event stream.

Run it with ``python -m benchmarks.compression [--events N] [--repeat N]``;
the benchmarks harness calls :func:`run`, which returns the figures as a dict.

``EventStream(compress=True)`` compresses every write and flushes it
(``Z_SYNC_FLUSH``) so that no event is held back; the compression context
still spans the whole stream, so keys repeated from event to event compress
well. Three streams, shaped like the library's uses (seeded, deterministic):

* ``ticker``: small JSON price ticks with ids;
* ``tokens``: OpenAI-style ``chat.completion.chunk`` events, one word each;
* ``chat``: chat messages of 20-200 characters with a sender and an id.

Each is encoded with :class:`~trio_stream.sse.SyncFlushGzip` (the encoder
``EventStream`` uses: level 6, a 4 KiB window, 32 KiB per stream) one event
per write (a subscriber keeping up) and 16 events per write (a subscriber
catching up, which the writer batches), against two references: the same
flush per write with zlib's default window and memory (256 KiB per stream),
and one gzip of the whole stream with no flush at all (the most a compressor
can save, at the price of holding every event back). Figures: bytes on the
wire as a share of the raw stream, and the compressor's CPU time per event.

Then the same ``tokens`` stream goes through the real endpoint on Hypercorn
to an httpx client, with and without ``Accept-Encoding: gzip``: the bytes
the client received (httpx's count of bytes off the socket) and the process
CPU per event (server and client share the process, so the difference is
the cost of compressing and decompressing). Both clients must decode the
same events.
"""

from __future__ import annotations

import argparse
import gzip as gzip_module
import json
import random
import statistics
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import trio

from trio_stream import Event, EventStream, SSEDecoder
from trio_stream.sse import SyncFlushGzip
from trio_stream.testing import open_test_server

_WORDS = (
    "the", "stream", "cancel", "scope", "nursery", "token", "answer", "model",
    "reconnect", "a", "of", "to", "and", "backpressure", "channel", "is",
)  # fmt: skip


def ticker(count: int, seed: int = 1) -> list[Event]:
    """Price ticks: ``{"symbol", "price", "ts"}`` with sequential ids."""
    rng = random.Random(seed)
    price = 100.0
    events = []
    for n in range(count):
        price = round(price * (1 + rng.uniform(-0.002, 0.002)), 2)
        data = {"symbol": "TRIO", "price": price, "ts": 1_790_000_000.0 + n * 0.25}
        events.append(Event.json(data, event="tick", id=f"1-{n}"))
    return events


def tokens(count: int, seed: int = 2) -> list[Event]:
    """OpenAI-style completion chunks of one word each, as a relay forwards them."""
    rng = random.Random(seed)
    events = []
    for n in range(count):
        chunk = {
            "id": "chatcmpl-5f1e2d3c4b5a",
            "object": "chat.completion.chunk",
            "created": 1_790_000_000,
            "model": "local-tokens",
            "choices": [
                {"index": 0, "delta": {"content": " " + rng.choice(_WORDS)}, "finish_reason": None}
            ],
        }
        events.append(Event.json(chunk, id=f"1-{n}"))
    return events


def chat(count: int, seed: int = 3) -> list[Event]:
    """Chat messages of 20-200 characters from a handful of senders."""
    rng = random.Random(seed)
    senders = ("ada", "grace", "linus", "barbara", "guido")
    events = []
    for n in range(count):
        length = rng.randint(20, 200)
        words: list[str] = []
        while sum(len(word) + 1 for word in words) < length:
            words.append(rng.choice(_WORDS))
        data = {"from": rng.choice(senders), "text": " ".join(words)}
        events.append(Event.json(data, event="message", id=f"1-{n}"))
    return events


STREAMS: dict[str, Callable[[int], list[Event]]] = {
    "ticker": ticker,
    "tokens": tokens,
    "chat": chat,
}


def _writes(events: list[Event], per_write: int) -> Iterator[bytes]:
    for start in range(0, len(events), per_write):
        yield b"".join(event.encode() for event in events[start : start + per_write])


def _library_encoder() -> Callable[[bytes], bytes]:
    return SyncFlushGzip().compress


def _zlib_default_encoder() -> Callable[[bytes], bytes]:
    encoder = zlib.compressobj(6, zlib.DEFLATED, 31)
    return lambda data: encoder.compress(data) + encoder.flush(zlib.Z_SYNC_FLUSH)


def _compressed(
    writes: list[bytes], make: Callable[[], Callable[[bytes], bytes]]
) -> tuple[int, float]:
    """Bytes out and CPU seconds for one pass of ``writes`` through a fresh encoder."""
    compress = make()
    started = time.process_time()
    size = sum(len(compress(data)) for data in writes)
    return size, time.process_time() - started


def _check_round_trip(writes: list[bytes]) -> None:
    # Each flushed piece must decode, on its own arrival, to exactly what was written.
    compress = _library_encoder()
    decoder = zlib.decompressobj(31)
    for data in writes:
        if decoder.decompress(compress(data)) != data:
            raise AssertionError("a flushed write did not decode to what was written")


def measure_encoders(events: int, repeat: int) -> dict[str, Any]:
    """Wire size (share of raw) and µs of CPU per event, per stream and write size."""
    results: dict[str, Any] = {}
    for name, build in STREAMS.items():
        stream = build(events)
        raw = b"".join(event.encode() for event in stream)
        whole = len(gzip_module.compress(raw, 6))
        row: dict[str, Any] = {
            "raw_bytes_per_event": len(raw) / events,
            "whole_stream_gzip_share": whole / len(raw),
        }
        for per_write in (1, 16):
            writes = list(_writes(stream, per_write))
            _check_round_trip(writes)
            for label, make in (
                ("sync_flush", _library_encoder),
                ("zlib_default", _zlib_default_encoder),
            ):
                runs = [_compressed(writes, make) for _ in range(repeat)]
                key = f"{label}_{per_write}"
                row[f"{key}_share"] = runs[0][0] / len(raw)
                row[f"{key}_us_per_event"] = (
                    statistics.median(cpu for _, cpu in runs) / events * 1e6
                )
        results[name] = row
    return results


def _endpoint(stream: list[Event]) -> Callable[..., Any]:
    """An ASGI app: every request gets ``stream`` through ``EventStream(compress=True)``."""

    async def produce(send_channel: trio.MemorySendChannel[Event]) -> None:
        await trio.lowlevel.checkpoint()  # even for an empty stream
        for event in stream:
            await send_channel.send(event)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await EventStream(produce, compress=True)(scope, receive, send)

    return app


async def _read_stream(url: str, accept_gzip: bool) -> tuple[int, float, int]:
    """(bytes off the socket, process CPU seconds, events decoded) for one whole stream."""
    headers = {"accept-encoding": "gzip" if accept_gzip else "identity"}
    decoder = SSEDecoder()
    received = 0
    started = time.process_time()
    async with (
        httpx.AsyncClient() as client,
        client.stream("GET", url, headers=headers) as response,
    ):
        if (response.headers.get("content-encoding") == "gzip") != accept_gzip:
            raise AssertionError("the server did not honour Accept-Encoding")
        async for chunk in response.aiter_bytes():  # the stream ends after the last event
            received += len(decoder.feed(chunk))
        downloaded = response.num_bytes_downloaded
    return downloaded, time.process_time() - started, received


async def _measure_endpoint(events: int, repeat: int) -> dict[str, Any]:
    stream = tokens(events)
    runs: dict[bool, list[tuple[int, float, int]]] = {False: [], True: []}
    async with open_test_server(_endpoint(stream)) as server:
        for _ in range(repeat):
            for accept_gzip in (False, True):  # interleaved: noise falls on both
                with trio.fail_after(120):
                    runs[accept_gzip].append(await _read_stream(server.url + "/", accept_gzip))
    for outcome in runs.values():
        if any(count != events for _, _, count in outcome):
            raise AssertionError("a client did not decode every event")
    identity_bytes, gzip_bytes = runs[False][0][0], runs[True][0][0]
    identity_us = statistics.median(cpu for _, cpu, _ in runs[False]) / events * 1e6
    gzip_us = statistics.median(cpu for _, cpu, _ in runs[True]) / events * 1e6
    return {
        "events": events,
        "identity_bytes": identity_bytes,
        "gzip_bytes": gzip_bytes,
        "wire_share": gzip_bytes / identity_bytes,
        "identity_cpu_us_per_event": identity_us,
        "gzip_cpu_us_per_event": gzip_us,
        "gzip_extra_cpu_us_per_event": gzip_us - identity_us,
    }


def run(*, events: int = 20_000, repeat: int = 3, quick: bool = False) -> dict[str, Any]:
    """Both measurements; ``quick`` shrinks them to a smoke run."""
    if quick:
        events, repeat = 500, 1
    return {
        "events": events,
        "encoders": measure_encoders(events, repeat),
        "endpoint_tokens": trio.run(_measure_endpoint, min(events, 5_000), repeat),
    }


def to_markdown(result: dict[str, Any]) -> str:
    """The figures as markdown tables."""
    lines = [
        f"gzip with a flush per write, {result['events']:,} events per stream "
        "(wire bytes as a share of the raw stream; compressor CPU per event):",
        "",
        "| stream | raw B/event | 1 event/write | 16 events/write | zlib defaults, 1/write "
        "| whole stream, no flush |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in result["encoders"].items():
        cells = [
            f"{row['sync_flush_1_share']:.0%}, {row['sync_flush_1_us_per_event']:.1f} µs",
            f"{row['sync_flush_16_share']:.0%}, {row['sync_flush_16_us_per_event']:.1f} µs",
            f"{row['zlib_default_1_share']:.0%}, {row['zlib_default_1_us_per_event']:.1f} µs",
            f"{row['whole_stream_gzip_share']:.0%}",
        ]
        lines.append(f"| {name} | {row['raw_bytes_per_event']:.0f} | " + " | ".join(cells) + " |")
    end = result["endpoint_tokens"]
    lines += [
        "",
        f"Through the endpoint on Hypercorn (tokens, {end['events']:,} events): "
        f"{end['identity_bytes']:,} B without gzip, {end['gzip_bytes']:,} B with "
        f"({end['wire_share']:.0%}); process CPU {end['identity_cpu_us_per_event']:.1f} → "
        f"{end['gzip_cpu_us_per_event']:.1f} µs per event (server and client).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Command line: print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON")
    args = parser.parse_args(argv)
    result = run(events=args.events, repeat=args.repeat)
    print(json.dumps(result, indent=2) if args.json else to_markdown(result))


if __name__ == "__main__":
    main()
