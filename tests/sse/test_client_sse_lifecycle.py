"""open_event_source lifetime: clients, errors in the block, cancellation, callbacks."""

from __future__ import annotations

import gc
from contextlib import AbstractAsyncContextManager

import httpx
import pytest
import trio
import trio.testing

from trio_stream.protocol import Backoff
from trio_stream.sse import EventSource, EventSourceStatistics, SSEServerError, open_event_source
from trio_stream.sse._asgi import Receive, Scope, Send, handle_lifespan
from trio_stream.testing import open_test_server

SAFETY = 10  # seconds: a bound on each test, never a wait for something to happen


def fast_backoff() -> Backoff:
    return Backoff(initial=0.001, maximum=0.005, jitter=0.0)


class App:
    """Answers request 1 with ``status`` + ``body`` (kept open if ``hold``), then ``later``."""

    def __init__(
        self, status: int, body: bytes = b"", *, later: int | None = None, hold: bool = False
    ) -> None:
        self.status, self.body, self.later, self.hold = status, body, later, hold
        self.requests = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await handle_lifespan(receive, send)
            return
        self.requests += 1
        first = self.requests == 1 or self.later is None
        status = self.status if first else self.later
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send(
            {
                "type": "http.response.body",
                "body": self.body if first else b"",
                "more_body": self.hold,
            }
        )
        while self.hold and (await receive())["type"] != "http.disconnect":
            pass


async def collect(source: EventSource) -> list[object]:
    return [event async for event in source]


async def test_given_client_is_left_open_and_own_client_is_closed() -> None:
    app = App(204)
    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server, httpx.AsyncClient() as client:
            async with open_event_source(server.url, client=client) as source:
                await collect(source)
            assert not client.is_closed
            assert (await client.get(server.url)).status_code == 204


async def fail_inside(context: AbstractAsyncContextManager[EventSource]) -> None:
    async with context as source:
        await source.__anext__()
        raise KeyError("boom")


async def test_error_in_the_block_propagates_unwrapped() -> None:
    app = App(200, b"data: 1\n\n", hold=True)
    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server:
            with pytest.raises(KeyError, match="boom"):
                await fail_inside(open_event_source(server.url))
            await server.wait_idle()  # the held response saw the disconnect


async def test_cancelling_the_reader_cleans_up_response_and_generators() -> None:
    # Many small events, consumer stops with the reader blocked on the full
    # channel: httpx's generator chain must be unwound, not left to the GC
    # (a ResourceWarning, an error under this suite's filterwarnings).
    app = App(200, b"".join(b"data: %d\n\n" % i for i in range(200)), hold=True)
    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server:
            with trio.CancelScope() as scope:
                async with open_event_source(server.url, capacity=2) as source:
                    await source.__anext__()
                    await trio.testing.wait_all_tasks_blocked(cushion=0.05)
                    assert source.statistics().queued == 2
                    scope.cancel()
                    await trio.sleep_forever()
            assert scope.cancelled_caught
            await server.wait_idle()
            gc.collect()
    assert source.state == "closed"


async def test_on_reconnect_sees_the_reconnecting_state() -> None:
    app = App(500, later=204)
    seen: list[EventSourceStatistics] = []
    with trio.fail_after(SAFETY):
        async with (
            open_test_server(app) as server,
            open_event_source(
                server.url, backoff=fast_backoff(), on_reconnect=seen.append
            ) as source,
        ):
            assert source.state == "connecting"
            await collect(source)
    (stats,) = seen
    assert (stats.state, stats.reconnects, stats.failures) == ("reconnecting", 1, 1)
    assert stats.last_delay is not None
    assert isinstance(stats.last_error, SSEServerError)


async def test_an_error_in_on_reconnect_ends_the_stream_with_it() -> None:
    app = App(500)

    def fail(stats: EventSourceStatistics) -> None:
        raise RuntimeError("callback bug")

    with trio.fail_after(SAFETY):
        async with (
            open_test_server(app) as server,
            open_event_source(server.url, on_reconnect=fail) as source,
        ):
            with pytest.raises(RuntimeError, match="callback bug"):
                await collect(source)
