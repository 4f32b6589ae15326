"""`serve(max_header_size=...)` holds for a head that arrives whole, not only in pieces.

Hypercorn's own HTTP/1.1 limit applies only while a head is incomplete: a head
read in one go (up to 64 KiB) used to pass it. These requests send the whole
head in one write.
"""

from __future__ import annotations

import logging

import pytest
import trio

from trio_stream.sse._asgi import Receive, Scope, Send, handle_lifespan, send_plain
from trio_stream.testing import open_test_server

SAFETY = 10.0
"""Seconds: a bound on each test's waits, never a wait for something to happen."""


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await handle_lifespan(receive, send)
        return
    await send_plain(send, 200, "hello")


async def _request(port: int, head: bytes) -> bytes:
    """Send ``head`` in one write; the response (the server closes: ``Connection: close``)."""
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        await stream.send_all(head)
        response = b""
        while chunk := await stream.receive_some(65536):
            response += chunk
        return response


def _head(header_bytes: int) -> bytes:
    return b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\nx-big: %s\r\n\r\n" % (
        b"a" * header_bytes
    )


async def test_a_whole_head_over_the_limit_gets_431_and_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="trio_stream.sse")
    with trio.fail_after(SAFETY):
        async with open_test_server(hello, max_header_size=4096) as server:
            refused = await _request(server.port, _head(8192))
            served = await _request(server.port, _head(1000))
    assert refused.startswith(b"HTTP/1.1 431 ")
    assert refused.endswith(b"request header fields too large")
    assert served.startswith(b"HTTP/1.1 200 ")
    assert [r.name for r in caplog.records if "max_header_size" in r.getMessage()] == [
        "trio_stream.sse"
    ]
