"""ConnectionLimits on real Hypercorn: 503 when full, 429 per address, slots freed on exit."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest
import trio

from trio_stream.core import Hub
from trio_stream.protocol import Event
from trio_stream.sse import (
    DEFAULT_LIMIT_RETRY_AFTER,
    ConnectionLimits,
    Route,
    Router,
    client_address,
    hub_endpoint,
)
from trio_stream.testing import RunningServer, open_sse_reader, open_test_server

SAFETY = 15  # seconds: a bound on each test, never a wait for something to happen


def limited_app(hub: Hub, **limits: Any) -> tuple[Router, ConnectionLimits]:
    limiter = ConnectionLimits(hub_endpoint(hub, keepalive_interval=None), **limits)
    return Router([Route("/sse/{topic}", limiter)]), limiter


@asynccontextmanager
async def client_from(address: str) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client whose connections come from ``address`` (any 127.x.y.z is loopback)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(transport=transport) as client:
        yield client


@asynccontextmanager
async def open_streams(
    stack: AsyncExitStack, server: RunningServer, address: str, count: int
) -> AsyncIterator[list[httpx.Response]]:
    client = await stack.enter_async_context(client_from(address))
    responses = []
    for _ in range(count):
        response = await stack.enter_async_context(client.stream("GET", server.url + "/sse/t"))
        assert response.status_code == 200
        responses.append(response)
    yield responses


async def test_per_client_limit_answers_429_and_other_clients_still_stream(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = Hub()
    app, limiter = limited_app(hub, max_connections=10, max_per_client=2)
    caplog.set_level(logging.WARNING, logger="trio_stream.sse")
    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server, AsyncExitStack() as stack:
            async with open_streams(stack, server, "127.0.0.1", 2):
                pass
            async with client_from("127.0.0.1") as greedy:
                refused = await greedy.get(server.url + "/sse/t")
            assert refused.status_code == 429
            assert refused.headers["retry-after"] == str(DEFAULT_LIMIT_RETRY_AFTER)
            assert refused.headers["content-type"].startswith("text/plain")
            assert "Traceback" not in refused.text
            async with (
                client_from("127.0.0.2") as other,
                other.stream("GET", server.url + "/sse/t") as response,
                open_sse_reader(response) as reader,
            ):
                assert response.status_code == 200
                await reader.chunk()  # the preamble: subscribed
                await hub.publish("t", Event("still served"))
                assert [e.data for e in await reader.events(1)] == ["still served"]
            await server.wait_in_flight(2)  # the other client's stream has ended
            stats = limiter.statistics()
            assert (stats.open, stats.clients, stats.rejected_per_client) == (2, 1, 1)
    assert any(
        "429" in record.getMessage() and "127.0.0.1" in record.getMessage()
        for record in caplog.records
    )


async def test_global_limit_answers_503_with_retry_after() -> None:
    hub = Hub()
    app, limiter = limited_app(hub, max_connections=2, max_per_client=5, retry_after=7)
    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server, AsyncExitStack() as stack:
            async with open_streams(stack, server, "127.0.0.1", 1):
                pass
            async with open_streams(stack, server, "127.0.0.2", 1):
                pass
            async with client_from("127.0.0.3") as newcomer:
                refused = await newcomer.get(server.url + "/sse/t")
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "7"
            stats = limiter.statistics()
            assert (stats.open, stats.peak, stats.rejected_full) == (2, 2, 1)
            assert (stats.max_connections, stats.max_per_client) == (2, 5)


async def test_slots_are_released_when_clients_leave() -> None:
    hub = Hub()
    app, limiter = limited_app(hub, max_connections=10, max_per_client=1)
    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server:
            for _ in range(3):  # each stream ends by a disconnect: its slot comes back
                async with AsyncExitStack() as stack, open_streams(stack, server, "127.0.0.1", 1):
                    assert limiter.statistics().open == 1
                await server.wait_idle()
                assert limiter.statistics().open == 0
            stats = limiter.statistics()
            assert (stats.admitted, stats.clients, stats.rejected_per_client) == (3, 0, 0)


async def test_slots_are_released_when_the_server_shuts_down() -> None:
    hub = Hub()
    app, limiter = limited_app(hub, max_connections=10, max_per_client=3)
    with trio.fail_after(SAFETY):
        async with AsyncExitStack() as stack:
            server = await stack.enter_async_context(open_test_server(app))
            await stack.enter_async_context(open_streams(stack, server, "127.0.0.1", 3))
            assert limiter.statistics().open == 3
            await server.wait_requests_started(3)
        # Leaving the server's block shut it down: every stream ended, cancelled or not.
    assert limiter.statistics().open == 0
    assert limiter.statistics().clients == 0


async def test_requests_that_are_not_http_pass_through_uncounted() -> None:
    seen: list[str] = []

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        seen.append(str(scope["type"]))
        await trio.lowlevel.checkpoint()

    limiter = ConnectionLimits(app)  # type: ignore[arg-type]
    await limiter({"type": "websocket"}, None, None)  # type: ignore[arg-type]
    assert seen == ["websocket"]
    assert limiter.statistics().admitted == 0


def test_client_address_reads_the_peer_or_says_unknown() -> None:
    assert client_address({"client": ("10.0.0.1", 5555)}) == "10.0.0.1"
    assert client_address({"client": None}) == "unknown"
    assert client_address({}) == "unknown"


@pytest.mark.parametrize(
    "limits",
    [{"max_connections": 0}, {"max_per_client": 0}, {"retry_after": -1}],
)
def test_bad_limits_are_refused(limits: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=">= "):
        ConnectionLimits(Router(), **limits)
