"""RateLimit: a token bucket per client; 429 with Retry-After; bounded memory."""

from __future__ import annotations

import logging

import httpx
import pytest
import trio
import trio.testing

from trio_stream.sse import RateLimit, Route, Router
from trio_stream.sse._asgi import Receive, Scope, Send, header_value, send_plain
from trio_stream.testing import open_asgi_client, open_test_server

SAFETY = 15  # seconds: a bound on each test, never a wait for something to happen


async def created(scope: Scope, receive: Receive, send: Send) -> None:
    """Stands for a publish endpoint: reads the body, answers 201."""
    while (await receive()).get("more_body", False):
        pass
    await send_plain(send, 201, "published")


def by_header(scope: Scope) -> str:
    return (header_value(scope, b"x-client") or b"?").decode()


async def test_over_the_rate_gets_429_with_retry_after_and_other_clients_pass(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # One token per 100 s: however slow the machine, no token comes back mid-test.
    limit = RateLimit(created, rate=0.01, burst=3)
    app = Router([Route("/api/topics/{topic}", limit, methods=["POST"])])
    caplog.set_level(logging.WARNING, logger="trio_stream.sse")
    url_path = "/api/topics/news"
    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server, httpx.AsyncClient() as client:
            statuses = [
                (await client.post(server.url + url_path, json={})).status_code for _ in range(3)
            ]
            refused = [await client.post(server.url + url_path, json={}) for _ in range(2)]
            transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
            async with httpx.AsyncClient(transport=transport) as other:
                other_status = (await other.post(server.url + url_path, json={})).status_code
    assert statuses == [201, 201, 201]
    for response in refused:
        assert response.status_code == 429
        assert 1 <= int(response.headers["retry-after"]) <= 100
        assert response.text == "too many requests; retry later"
    assert other_status == 201
    stats = limit.statistics()
    assert (stats.allowed, stats.limited, stats.keys, stats.evicted) == (4, 2, 2, 0)
    limited_logs = [r for r in caplog.records if "rate limited" in r.getMessage()]
    assert len(limited_logs) == 1  # once per run of refusals, not once per request
    assert "127.0.0.1" in limited_logs[0].getMessage()


async def test_tokens_come_back_at_the_rate(autojump_clock: trio.testing.MockClock) -> None:
    limit = RateLimit(created, rate=2.0, burst=2)
    async with open_asgi_client(limit) as client:
        assert [(await client.post("/")).status_code for _ in range(3)] == [201, 201, 429]
        refused = await client.post("/")
        assert refused.headers["retry-after"] == "1"  # half a second, rounded up
        await trio.sleep(0.5)
        assert (await client.post("/")).status_code == 201
        assert (await client.post("/")).status_code == 429
        await trio.sleep(10)  # refills to the burst, no further
        assert [(await client.post("/")).status_code for _ in range(3)] == [201, 201, 429]


async def test_memory_is_bounded_idle_buckets_go_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limit = RateLimit(created, rate=1.0, burst=2, key=by_header, max_keys=2)
    async with open_asgi_client(limit) as client:

        async def post(name: str) -> int:
            return (await client.post("/", headers={"x-client": name})).status_code

        assert [await post("a"), await post("b")] == [201, 201]
        assert limit.statistics().keys == 2
        # A third client while both buckets are still refilling: the oldest goes.
        assert await post("c") == 201
        stats = limit.statistics()
        assert (stats.keys, stats.evicted, stats.max_keys) == (2, 1, 2)
        await trio.sleep(5)  # every bucket refilled: idle, dropped as requests come
        assert await post("d") == 201
        assert limit.statistics().keys == 1
        assert limit.statistics().evicted == 1


async def test_websocket_and_lifespan_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])
        await trio.lowlevel.checkpoint()

    limit = RateLimit(app, rate=1.0, burst=1)

    async def nothing() -> dict[str, object]:
        await trio.lowlevel.checkpoint()
        raise AssertionError

    async def ignore(message: object) -> None:
        await trio.lowlevel.checkpoint()
        raise AssertionError

    for _ in range(3):
        await limit({"type": "websocket"}, nothing, ignore)
    assert seen == ["websocket"] * 3
    assert limit.statistics().allowed == 0


@pytest.mark.parametrize(
    "options",
    [{"rate": 0.0}, {"rate": -1.0}, {"rate": float("inf")}, {"burst": 0}, {"max_keys": 0}],
)
def test_bad_settings_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        RateLimit(created, **options)  # type: ignore[arg-type]
