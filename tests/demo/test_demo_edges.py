"""The demo at its edges: a closed hub, clients that leave, the page before it is ready,
and two instances sharing topics through Redis."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from tests.brokers._redis_server import RedisServer
from tests.demo._demo_helpers import (
    SAFETY,
    demo_client,
    publish,
    running_demo,
    sse_stream,
    ws_connect,
    ws_receive,
)
from trio_stream.brokers import RedisBroker
from trio_stream.core import Hub
from trio_stream.demo import Answers, DemoApp, DemoConfig, JobRunner, Rooms
from trio_stream.demo._http import ClientGone, bearer_allowed, read_body, token_matches
from trio_stream.llm import LocalTokenSource
from trio_stream.testing import open_asgi_client
from trio_stream.websocket import open_websocket_client


def _app(hub: Hub) -> DemoApp:
    config = DemoConfig(port=0, ws_port=0)
    answers = Answers(LocalTokenSource())
    return DemoApp(hub, config, answers=answers, jobs=JobRunner(hub), rooms=Rooms(hub))


async def test_a_closed_hub_answers_503_and_closes_websockets_with_1001(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with running_demo(ticker_interval=0) as server, demo_client(server) as client:
        server.hub.close()
        published = await client.post("/api/topics/news", json={"data": 1})
        job = await client.post("/api/jobs")
        async with open_websocket_client(server.ws_url + "/ws/chat", max_attempts=1) as ws:
            with trio.fail_after(SAFETY):
                await ws.wait_disconnected()
    assert published.status_code == job.status_code == 503
    handler_errors = [r for r in caplog.records if "handler raised" in r.getMessage()]
    assert handler_errors == []


async def test_page_is_503_until_the_websocket_port_is_known() -> None:
    async with open_asgi_client(_app(Hub())) as client:
        page = await client.get("/")
        health = await client.get("/healthz")
    assert page.status_code == 503
    assert health.status_code == 200


async def test_a_client_that_leaves_before_its_body_gets_no_answer() -> None:
    app = _app(Hub())
    sent: list[Any] = []

    async def gone() -> dict[str, Any]:
        await trio.lowlevel.checkpoint()
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        await trio.lowlevel.checkpoint()
        sent.append(message)

    for route, params in ((app.publish, {"topic": "news"}), (app.start_job, {})):
        scope = {"type": "http", "method": "POST", "path": "/", "path_params": params}
        await route(scope, gone, send)
    assert sent == []
    with pytest.raises(ClientGone):
        await read_body(gone, 10)


def test_token_checks() -> None:
    assert token_matches(None, "anything")
    assert token_matches("s3cret", "s3cret")
    assert not token_matches("s3cret", "s3cret!")
    assert not token_matches("s3cret", None)
    scope: dict[str, Any] = {"headers": [(b"authorization", b"Basic czNjcmV0")]}
    assert not bearer_allowed(scope, "s3cret")
    assert not bearer_allowed({"headers": []}, "s3cret")
    assert bearer_allowed({"headers": [(b"authorization", b"bearer  s3cret ")]}, "s3cret")
    assert bearer_allowed({"headers": []}, None)


@pytest.mark.needs_redis
async def test_two_demos_share_topics_through_redis(redis_server: RedisServer) -> None:
    options = {"ticker_interval": 0, "redis": redis_server.url}
    async with (
        running_demo(**options) as one,
        running_demo(**options) as two,
        demo_client(one) as client_one,
        demo_client(two) as client_two,
        sse_stream(client_two, "/sse/news") as reader,
        ws_connect(two, "/ws/news") as ws,
    ):
        with trio.fail_after(SAFETY):
            await ws_receive(ws, "presence")
            first = await publish(client_one, "news", "from one")
            presence, event = await reader.events(2)  # the WebSocket visitor joined first
            by_ws = await ws_receive(ws, "message")
            second = await publish(client_one, "news", "missed")
            path = f"/sse/news?last_event_id={first}"
            async with sse_stream(client_two, path) as resumed:
                (replayed,) = await resumed.events(1)
    assert presence.event == "presence"
    assert (event.id, event.data) == (first, "from one")
    assert by_ws["id"] == first
    assert (replayed.id, replayed.data) == (second, "missed")


@pytest.mark.needs_redis
async def test_a_redis_outage_is_503_and_the_demo_recovers(redis_server: RedisServer) -> None:
    async with (
        running_demo(ticker_interval=0.05, redis=redis_server.url) as server,
        demo_client(server) as client,
    ):
        await redis_server.astop()
        published = await client.post("/api/topics/news", json={"data": 1})
        subscribed = await client.get("/sse/news")
        job = await client.post("/api/jobs")
        healthy = await client.get("/healthz")
        await redis_server.astart()
        broker = server.hub.broker
        assert isinstance(broker, RedisBroker)
        with trio.fail_after(SAFETY):
            await broker.wait_available()
            async with sse_stream(client, "/sse/ticker") as reader:
                await reader.events(2)  # the ticker survived the outage
            recovered = await publish(client, "news", "back")
    assert published.status_code == subscribed.status_code == job.status_code == 503
    assert healthy.status_code == 200
    assert recovered
