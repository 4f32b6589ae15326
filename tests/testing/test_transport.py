"""StreamingASGITransport: scope, request body, streaming, disconnect, failures."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trio_stream.sse._asgi import Message, Receive, Scope, Send, send_plain
from trio_stream.testing import open_asgi_client, open_sse_reader


async def test_scope_and_request_body_reach_the_app() -> None:
    seen: list[Scope] = []
    bodies: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)
        bodies.append(await receive())
        await send_plain(send, 200, "ok")

    async with open_asgi_client(app, base_url="http://example.org") as client:
        response = await client.post("/a%20b?x=1", content=b"payload", headers={"X-A": "1"})
    assert response.text == "ok"
    scope = seen[0]
    assert (scope["method"], scope["path"], scope["query_string"]) == ("POST", "/a b", b"x=1")
    assert (b"x-a", b"1") in scope["headers"]
    assert scope["server"] == ("example.org", 80)
    assert bodies == [{"type": "http.request", "body": b"payload", "more_body": False}]


async def test_body_chunks_stream_and_closing_delivers_disconnect() -> None:
    events: list[str] = []
    proceed = trio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.trailers"})  # ignored by the client side
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await proceed.wait()
        await send({"type": "http.response.body", "body": b"", "more_body": True})
        events.append((await receive())["type"])
        # Like Hypercorn: sending after the disconnect does not raise.
        await send({"type": "http.response.body", "body": b"late", "more_body": True})
        events.append("sent after disconnect")

    async with open_asgi_client(app) as client:
        async with client.stream("GET", "/") as response, open_sse_reader(response) as reader:
            assert await reader.chunk() == b"first"  # before the app sent the rest
            proceed.set()
            await trio.testing.wait_all_tasks_blocked()
        await trio.testing.wait_all_tasks_blocked()
    assert events == ["http.disconnect", "sent after disconnect"]


async def test_error_before_the_response_is_raised_to_the_client() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await trio.lowlevel.checkpoint()
        raise LookupError("boom")

    async with open_asgi_client(app) as client:
        with pytest.raises(LookupError, match="boom"):
            await client.get("/")


async def test_app_returning_without_a_response_is_an_error() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await trio.lowlevel.checkpoint()

    async with open_asgi_client(app) as client:
        with pytest.raises(RuntimeError, match="without sending a response"):
            await client.get("/")


async def test_error_after_the_response_started_just_ends_the_body(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise LookupError("late")

    async with open_asgi_client(app) as client:
        response = await client.get("/")
    assert response.content == b"partial"
    assert "ASGI app failed" in caplog.text


async def test_leaving_the_client_cancels_apps_still_running() -> None:
    finished: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            await trio.sleep_forever()
        finally:
            finished.append("cancelled")

    async with open_asgi_client(app) as client:
        response = await client.send(client.build_request("GET", "/"), stream=True)
        assert response.status_code == 200
    assert finished == ["cancelled"]


async def test_errors_in_the_body_come_out_unwrapped() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send_plain(send, 200, "ok")

    with pytest.raises(KeyError, match="mine"):
        async with open_asgi_client(app):
            raise KeyError("mine")
