"""serve(): startable on Hypercorn, reports its URL, shuts down gracefully, bounded headers."""

from __future__ import annotations

import gc
import logging
import socket
from functools import partial

import httpx
import pytest
import trio
from hypercorn.config import Config

from trio_stream.protocol import Event
from trio_stream.sse import EventStream, ServeError, current_shutdown_event, serve
from trio_stream.sse._asgi import Receive, Scope, Send, handle_lifespan, send_plain
from trio_stream.sse._serve import _close_quietly
from trio_stream.testing import open_sse_reader, open_test_server

SAFETY = 10  # seconds: a bound on each test, never a wait for something to happen


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await handle_lifespan(receive, send)
        return
    await send_plain(send, 200, "hello")


async def test_serve_is_startable_and_reports_its_url() -> None:
    with trio.fail_after(SAFETY):
        async with trio.open_nursery() as nursery:
            url = await nursery.start(partial(serve, hello, send_timeout=None))
            assert url.startswith("http://127.0.0.1:")
            assert int(url.rsplit(":", 1)[1]) > 0
            async with httpx.AsyncClient() as client:
                response = await client.get(url)
            assert (response.status_code, response.text) == (200, "hello")
            nursery.cancel_scope.cancel()


async def test_shutdown_event_is_set_only_inside_serve_during_shutdown() -> None:
    seen: list[trio.Event | None] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await handle_lifespan(receive, send)
            return
        seen.append(current_shutdown_event())
        await send_plain(send, 200, "ok")

    assert current_shutdown_event() is None
    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server, httpx.AsyncClient() as client:
            await client.get(server.url)
    assert current_shutdown_event() is None
    event = seen[0]
    assert event is not None
    assert event.is_set()


async def test_cancelling_serve_ends_open_streams_cleanly() -> None:
    finalised: list[str] = []

    async def forever(send_channel: trio.MemorySendChannel[Event]) -> None:
        try:
            await send_channel.send(Event("first", id="1"))
            await trio.sleep_forever()
        finally:
            finalised.append("producer")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await EventStream(forever)(scope, receive, send)

    server_scope = trio.CancelScope()

    async def run_server(*, task_status: trio.TaskStatus[str]) -> None:  # noqa: ASYNC114, ASYNC128  passed on
        with server_scope:
            await serve(app, graceful_timeout=SAFETY, task_status=task_status)

    with trio.fail_after(SAFETY):
        async with trio.open_nursery() as nursery:
            url = await nursery.start(run_server)
            async with (
                httpx.AsyncClient() as client,
                client.stream("GET", url) as response,
                open_sse_reader(response) as reader,
            ):
                assert [e.data for e in await reader.events(1)] == ["first"]
                server_scope.cancel()
                # The body ends properly (terminating chunk), with no read error.
                assert await reader.rest() == []
                assert reader.ended
    assert finalised == ["producer"]


async def test_lifespan_failure_raises_serve_error() -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    with trio.fail_after(SAFETY), pytest.raises(ServeError):
        await serve(failing)


async def test_bad_certificate_fails_before_binding(tmp_path: object) -> None:
    with pytest.raises(OSError):  # noqa: PT011  ssl reports a missing file as OSError
        await serve(hello, certfile="/nonexistent/cert.pem", keyfile="/nonexistent/key.pem")


async def test_port_in_use_raises_oserror() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match="in use"):
            await serve(hello, port=port)


async def _raw_request(port: int, head: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(head)
        response = b""
        while chunk := await stream.receive_some(65536):
            response += chunk
        return response


async def test_oversized_request_head_gets_431_and_others_are_served() -> None:
    with trio.fail_after(SAFETY):
        async with open_test_server(hello, max_header_size=4096) as server:
            # A head still incomplete beyond the limit is refused at once.
            huge = b"GET / HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 8192
            response = await _raw_request(server.port, huge)
            assert response.startswith(b"HTTP/1.1 431 ")
            async with httpx.AsyncClient() as client:
                ok = await client.get(server.url, headers={"x-small": "a" * 1000})
            assert ok.status_code == 200


def test_closing_an_already_closed_descriptor_is_quiet() -> None:
    with socket.socket() as sock:
        fd = sock.detach()
    _close_quietly(fd)
    _close_quietly(fd)  # EBADF is ignored


async def test_lifespan_startup_timeout_raises_serve_error() -> None:
    async def silent(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await trio.sleep_forever()  # never acknowledges startup

    config = Config()
    config.startup_timeout = 0.05
    config.errorlog = logging.getLogger("test.hypercorn")  # not a handler on stderr
    with trio.fail_after(SAFETY), pytest.raises(ServeError):
        await serve(silent, config=config)


async def test_freeze_gc_moves_startup_objects_out_of_full_collections(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="trio_stream.sse")
    assert gc.get_freeze_count() == 0  # off by default: no test before this one froze
    try:
        with trio.fail_after(SAFETY):
            async with open_test_server(hello, freeze_gc=True) as server:
                frozen = gc.get_freeze_count()
                async with httpx.AsyncClient() as client:
                    assert (await client.get(server.url)).status_code == 200
    finally:
        gc.unfreeze()  # the rest of the suite runs with an ordinary collector
    assert frozen > 1000  # at least the imported modules' objects
    assert "startup objects out of the collector's full passes" in caplog.text
