"""`Authenticated` on real Hypercorn: 401, 403 per topic, a failing hook, the identity."""

from __future__ import annotations

import logging

import httpx
import pytest
import trio

from trio_stream.core import Hub
from trio_stream.protocol import Event
from trio_stream.sse import Authenticated, RequestRejected, Route, Router, hub_endpoint
from trio_stream.sse._asgi import Receive, Scope, Send, header_value, send_plain
from trio_stream.testing import open_sse_reader, open_test_server

SAFETY = 15  # seconds: a bound on each test, never a wait for something to happen
TOKENS = {"t-ada": "ada", "t-bob": "bob"}


async def authenticate(scope: Scope) -> str | None:
    await trio.lowlevel.checkpoint()
    value = (header_value(scope, b"authorization") or b"").decode("latin-1")
    user = TOKENS.get(value.removeprefix("Bearer "))
    topic = scope.get("path_params", {}).get("topic", "")
    if user is not None and topic.startswith("private.") and topic != f"private.{user}":
        raise RequestRejected(403, "forbidden")
    return user


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def app_for(hub: Hub) -> tuple[Router, Authenticated]:
    async def whoami(scope: Scope, receive: Receive, send: Send) -> None:
        await send_plain(send, 200, str(scope["identity"]))

    guarded = Authenticated(hub_endpoint(hub, keepalive_interval=None), authenticate)
    router = Router(
        [
            Route("/sse/{topic}", guarded),
            Route("/whoami", Authenticated(whoami, authenticate)),
        ]
    )
    return router, guarded


async def test_only_authenticated_clients_stream_and_others_are_unaffected(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="trio_stream.sse")
    hub = Hub()
    app, guarded = app_for(hub)
    with trio.fail_after(SAFETY):
        async with (
            open_test_server(app) as server,
            httpx.AsyncClient() as client,
            client.stream("GET", server.url + "/sse/private.ada", headers=bearer("t-ada")) as ada,
            open_sse_reader(ada) as reader,
        ):
            assert ada.status_code == 200
            await reader.chunk()
            anonymous = await client.get(server.url + "/sse/news")
            assert anonymous.status_code == 401
            assert anonymous.headers["www-authenticate"] == "Bearer"
            assert anonymous.text == "not authenticated"
            wrong = await client.get(server.url + "/sse/news", headers=bearer("guess"))
            assert wrong.status_code == 401
            nosy = await client.get(server.url + "/sse/private.ada", headers=bearer("t-bob"))
            assert (nosy.status_code, nosy.text) == (403, "forbidden")
            # The authenticated reader never noticed.
            await hub.publish("private.ada", Event("for ada"))
            assert [e.data for e in await reader.events(1)] == ["for ada"]
            me = await client.get(server.url + "/whoami", headers=bearer("t-bob"))
            assert (me.status_code, me.text) == (200, "bob")
    stats = guarded.statistics()
    assert (stats.admitted, stats.unauthenticated, stats.refused, stats.failed) == (1, 2, 1, 0)
    messages = [r.getMessage() for r in caplog.records if r.name == "trio_stream.sse"]
    assert "rejected GET /sse/news: 401 not authenticated" in messages
    assert "rejected GET /sse/private.ada: 403 forbidden" in messages


async def test_a_failing_hook_answers_500_without_its_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(scope: Scope) -> str:
        await trio.lowlevel.checkpoint()
        raise KeyError("secret-table-name")

    async def never(scope: Scope, receive: Receive, send: Send) -> None:  # pragma: no cover
        await trio.lowlevel.checkpoint()
        raise AssertionError("the app must not run")

    guarded = Authenticated(never, broken)
    with trio.fail_after(SAFETY):
        async with open_test_server(guarded) as server, httpx.AsyncClient() as client:
            answer = await client.get(server.url + "/anything")
    assert (answer.status_code, answer.text) == (500, "internal error")
    assert "secret" not in answer.text
    assert guarded.statistics().failed == 1
    (record,) = [r for r in caplog.records if r.name == "trio_stream.sse"]
    assert record.getMessage() == "the authentication hook failed for /anything"
    assert record.exc_info is not None


def test_a_scheme_cannot_inject_headers() -> None:
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        Authenticated(Router(), authenticate, scheme="Bearer\r\nx-evil: 1")
