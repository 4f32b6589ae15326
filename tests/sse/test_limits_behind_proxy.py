"""ConnectionLimits behind a reverse proxy: Hypercorn's ProxyFixMiddleware names the client."""

from __future__ import annotations

from typing import Any, cast

import httpx
import trio
from hypercorn.middleware import ProxyFixMiddleware

from trio_stream.core import Hub
from trio_stream.protocol import Event
from trio_stream.sse import ConnectionLimits, Route, Router, hub_endpoint
from trio_stream.sse._asgi import ASGIApp
from trio_stream.testing import open_sse_reader, open_test_server

SAFETY = 15  # seconds: a bound on each test, never a wait for something to happen


def behind_proxy(app: ASGIApp) -> ASGIApp:
    """``app`` in Hypercorn's ProxyFixMiddleware, trusting one proxy.

    The casts only bridge two spellings of the ASGI types (Hypercorn's
    TypedDicts, trio_stream's mappings).
    """
    return cast(ASGIApp, ProxyFixMiddleware(cast(Any, app), trusted_hops=1))


def forwarded(address: str) -> dict[str, str]:
    """What nginx's ``$proxy_add_x_forwarded_for`` sends for a client at ``address``."""
    return {"X-Forwarded-For": address}


async def test_clients_behind_one_proxy_are_counted_apart() -> None:
    hub = Hub()
    limiter = ConnectionLimits(hub_endpoint(hub, keepalive_interval=None), max_per_client=1)
    app = behind_proxy(Router([Route("/sse/{topic}", limiter)]))
    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server, httpx.AsyncClient() as proxy:
            url = server.url + "/sse/t"
            async with (
                proxy.stream("GET", url, headers=forwarded("203.0.113.5")) as first,
                proxy.stream("GET", url, headers=forwarded("198.51.100.7")) as second,
                open_sse_reader(second) as reader,
            ):
                # Every connection comes from the proxy's address, yet each client
                # has its own count: the second is not refused.
                assert (first.status_code, second.status_code) == (200, 200)
                again = await proxy.get(url, headers=forwarded("203.0.113.5"))
                assert again.status_code == 429
                # A client's own X-Forwarded-For comes first; the proxy appends the
                # address it saw, and only that (the last) one is trusted.
                spoofed = await proxy.get(url, headers=forwarded("198.51.100.99, 203.0.113.5"))
                assert spoofed.status_code == 429
                statistics = limiter.statistics()
                assert (statistics.open, statistics.clients) == (2, 2)
                await reader.chunk()  # the preamble: subscribed
                await hub.publish("t", Event("through the middleware"))
                assert [e.data for e in await reader.events(1)] == ["through the middleware"]


async def test_without_the_middleware_the_proxy_is_one_client() -> None:
    # The control: what the page in docs/guides/deploying.md warns about.
    hub = Hub()
    limiter = ConnectionLimits(hub_endpoint(hub, keepalive_interval=None), max_per_client=1)
    app = Router([Route("/sse/{topic}", limiter)])
    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server, httpx.AsyncClient() as proxy:
            url = server.url + "/sse/t"
            async with proxy.stream("GET", url, headers=forwarded("203.0.113.5")) as first:
                assert first.status_code == 200
                other = await proxy.get(url, headers=forwarded("198.51.100.7"))
                assert other.status_code == 429
