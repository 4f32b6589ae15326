"""open_sse_reader: exact counts, chunks, comments, the end of the body, broken bodies."""

from __future__ import annotations

import pytest
import trio

from trio_stream.sse._asgi import Receive, Scope, Send
from trio_stream.testing import open_asgi_client, open_sse_reader

BODY = [b": hi\n\n", b"data: a\n\ndata: b\n\n", b"data: c\n\n"]


async def fixed_body(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for part in BODY:
        await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def test_events_chunks_comments_and_the_end() -> None:
    async with (
        open_asgi_client(fixed_body) as client,
        client.stream("GET", "/") as response,
        open_sse_reader(response) as reader,
    ):
        assert await reader.chunk() == b": hi\n\n"
        assert [e.data for e in await reader.events(1)] == ["a"]
        assert [e.data for e in await reader.events(2)] == ["b", "c"]
        assert reader.comments == 1
        with pytest.raises(trio.EndOfChannel):
            await reader.events(1)
        with pytest.raises(trio.EndOfChannel):
            await reader.chunk()
        assert reader.ended
        assert reader.chunks == BODY


async def test_closing_early_finishes_the_body_iterators() -> None:
    async with (
        open_asgi_client(fixed_body, capacity=8) as client,
        client.stream("GET", "/") as response,
    ):
        async with open_sse_reader(response) as reader:
            await reader.chunk()
        # The rest was buffered: the closing read found data, then the end.
        assert reader.ended
