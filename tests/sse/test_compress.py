"""Compression that never holds an event back: gzip with a sync flush after each write."""

from __future__ import annotations

import gzip
import zlib

import httpx
import pytest
import trio

from trio_stream.protocol import Event, SSEDecoder
from trio_stream.sse import EventStream, SyncFlushGzip
from trio_stream.sse._asgi import Receive, Scope, Send
from trio_stream.sse._request import accepts_gzip
from trio_stream.testing import open_asgi_client, open_test_server

SAFETY = 10  # seconds: a bound on each test, never a wait for something to happen


def test_every_write_decodes_at_once_and_the_whole_is_valid_gzip() -> None:
    encoder = SyncFlushGzip()
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    parts = [Event.json({"n": i, "text": "same keys again"}).encode() for i in range(20)]
    wire = b""
    for part in parts:
        compressed = encoder.compress(part)
        wire += compressed
        assert decoder.decompress(compressed) == part  # nothing held back
    wire += encoder.finish()
    assert encoder.finish() == b""  # once only
    assert gzip.decompress(wire) == b"".join(parts)
    assert len(wire) < len(b"".join(parts))  # the context spans events


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, False),
        ("gzip", True),
        ("br, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("GZIP; q=1.0", True),
        ("x-gzip", True),
        ("*", True),
        ("*;q=0", False),
        ("br, deflate", False),
        ("gzip;q=nonsense", False),
    ],
)
def test_accept_encoding_negotiation(header: str | None, expected: bool) -> None:
    headers = [] if header is None else [(b"accept-encoding", header.encode())]
    assert accepts_gzip({"headers": headers}) is expected


async def test_each_event_is_readable_before_the_next_is_sent() -> None:
    acknowledged = [trio.Event() for _ in range(5)]

    async def paced(send_channel: trio.MemorySendChannel[Event]) -> None:
        await trio.lowlevel.checkpoint()
        for i, ack in enumerate(acknowledged):
            await send_channel.send(Event(f"event {i}", id=str(i)))
            await ack.wait()  # the next one only after the client decoded this one

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await EventStream(paced, compress=True)(scope, receive, send)

    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server, httpx.AsyncClient() as client:
            headers = {"accept-encoding": "gzip"}
            async with client.stream("GET", server.url, headers=headers) as response:
                assert response.headers["content-encoding"] == "gzip"
                assert response.headers["vary"] == "accept-encoding"
                inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
                sse = SSEDecoder()
                received: list[str] = []
                async for raw in response.aiter_raw():
                    for event in sse.feed(inflate.decompress(raw)):
                        received.append(event.data)
                        acknowledged[len(received) - 1].set()
                assert inflate.eof  # the stream ended with a proper gzip trailer
    assert received == [f"event {i}" for i in range(5)]


async def test_clients_that_do_not_accept_gzip_get_identity() -> None:
    async def one(send_channel: trio.MemorySendChannel[Event]) -> None:
        await send_channel.send(Event("plain"))

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await EventStream(one, compress=True)(scope, receive, send)

    async with open_asgi_client(app) as client:
        response = await client.get("/", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in response.headers
    assert response.headers["vary"] == "accept-encoding"
    assert response.content.endswith(b"data: plain\n\n")
