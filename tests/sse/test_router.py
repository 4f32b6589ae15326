"""Router: path parameters, methods, 404/405, lifespan; hub_endpoint's topic checks."""

from __future__ import annotations

import logging

import pytest
import trio

from trio_stream.core import Hub
from trio_stream.sse import Route, Router, hub_endpoint
from trio_stream.sse._asgi import Message, Receive, Scope, Send, send_plain
from trio_stream.testing import open_asgi_client


async def echo_params(scope: Scope, receive: Receive, send: Send) -> None:
    params = scope["path_params"]
    await send_plain(send, 200, ",".join(f"{k}={v}" for k, v in sorted(params.items())))


async def test_path_parameters_are_decoded_into_scope() -> None:
    router = Router([Route("/rooms/{room}/users/{user}", echo_params)])
    async with open_asgi_client(router) as client:
        response = await client.get("/rooms/a%20b/users/42")
    assert response.text == "room=a b,user=42"


async def test_unknown_path_is_404_and_wrong_method_is_405(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    router = Router()
    router.add("/things/{id}", echo_params, methods=["GET"])

    @router.route("/things", methods=["post"])
    async def create(scope: Scope, receive: Receive, send: Send) -> None:
        await send_plain(send, 201, "created")

    async with open_asgi_client(router) as client:
        missing = await client.get("/nothing")
        wrong = await client.delete("/things/1")
        created = await client.post("/things")
        head = await client.head("/things/1")
        params_need_a_segment = await client.get("/things/")
    assert (missing.status_code, missing.text) == (404, "not found")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "GET, HEAD"
    assert created.status_code == 201
    assert head.status_code == 200
    assert params_need_a_segment.status_code == 404
    assert "404 GET /nothing" in caplog.text
    assert "405 DELETE /things/1" in caplog.text


def test_route_paths_start_with_a_slash() -> None:
    with pytest.raises(ValueError, match="starts with"):
        Route("sse/{topic}", echo_params)


async def drive_lifespan(router: Router) -> list[str]:
    sent: list[str] = []
    incoming = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> Message:
        await trio.lowlevel.checkpoint()
        return next(incoming)

    async def send(message: Message) -> None:
        await trio.lowlevel.checkpoint()
        sent.append(message["type"])

    await router({"type": "lifespan"}, receive, send)
    return sent


async def test_lifespan_is_acknowledged_or_passed_through() -> None:
    assert await drive_lifespan(Router()) == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    calls: list[str] = []

    async def lifespan(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope["type"])
        await trio.lowlevel.checkpoint()

    assert await drive_lifespan(Router(lifespan=lifespan)) == []
    assert calls == ["lifespan"]


async def test_websocket_scopes_are_routed_by_path_only() -> None:
    seen: list[dict[str, str]] = []

    async def ws(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["path_params"])
        await trio.lowlevel.checkpoint()

    closed: list[Message] = []

    async def send(message: Message) -> None:
        await trio.lowlevel.checkpoint()
        closed.append(message)

    router = Router([Route("/ws/{topic}", ws)])
    await router({"type": "websocket", "path": "/ws/chat"}, None, send)  # type: ignore[arg-type]
    await router({"type": "websocket", "path": "/elsewhere"}, None, send)  # type: ignore[arg-type]
    assert seen == [{"topic": "chat"}]
    assert closed == [{"type": "websocket.close", "code": 1000}]


async def test_hub_endpoint_rejects_invalid_and_unknown_topics(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = Hub()
    router = Router(
        [
            Route("/open/{topic}", hub_endpoint(hub)),
            Route("/listed/{topic}", hub_endpoint(hub, topics=["ticker"])),
            Route("/checked/{topic}", hub_endpoint(hub, topics=lambda t: t.startswith("jobs."))),
        ]
    )
    async with open_asgi_client(router) as client:
        invalid = await client.get("/open/no%20spaces")
        unknown = await client.get("/listed/other")
        rejected = await client.get("/checked/ticker")
        head = await client.head("/listed/ticker")
    assert (invalid.status_code, invalid.text) == (400, "invalid topic")
    assert (unknown.status_code, unknown.text) == (404, "unknown topic")
    assert rejected.status_code == 404
    assert head.status_code == 200
    assert "rejected GET /open/no spaces: 400 invalid topic" in caplog.text
    assert "rejected GET /listed/other: 404 unknown topic" in caplog.text


async def test_hub_endpoint_acknowledges_lifespan() -> None:
    router = Router(lifespan=hub_endpoint(Hub()))
    assert await drive_lifespan(router) == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
