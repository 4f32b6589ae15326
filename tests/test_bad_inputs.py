"""Every bad input in ``tests/bad_inputs.py``, executed against the real components.

Each case runs against real servers on loopback (the demo on Hypercorn and
trio-websocket, ``hub_endpoint`` on Hypercorn, an SSE server for the client
cases, an upstream for the LLM relay) and asserts: the outcome in the table,
a log line on the table's logger, no exception text in what the client reads,
and that another client is still served afterwards. The last test renders the
table and compares it with ``docs/security.md``.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from tests.bad_inputs import CASES, TABLE_END, TABLE_START, BadInput, markdown_table
from tests.demo._demo_helpers import running_demo, ws_receive
from trio_stream.core import Hub, open_hub
from trio_stream.demo import DemoServer
from trio_stream.protocol import ChatChunkParser, ChunkDecodeError, Event, SSEDecodeError
from trio_stream.sse import (
    CORS,
    Authenticated,
    ConnectionLimits,
    EventStream,
    RateLimit,
    RequestRejected,
    Route,
    Router,
    hub_endpoint,
    open_event_source,
)
from trio_stream.sse._asgi import ASGIApp, Receive, Scope, Send, header_value, send_plain
from trio_stream.testing import SSEReader, open_sse_reader, open_test_server
from trio_stream.websocket import WebSocketClosed, open_websocket_client

SAFETY = 30.0
"""Seconds: a bound on each case's waits, never a wait for something to happen."""

TOKEN = "s3cret"
_AUTH = {"authorization": f"Bearer {TOKEN}"}
DOCS = Path(__file__).parent.parent / "docs" / "security.md"

# What exception text or a traceback would look like in a response.
_LEAK = re.compile(r"Traceback|File \"|\w+(Error|Exception)\b|line \d+ column")


def _no_leak(text: str) -> None:
    assert _LEAK.search(text) is None, text


# -- the demo, with a bystander on each transport ------------------------------------


@dataclass
class Demo:
    """A demo with ``--token`` set, an authorised client and two bystander readers."""

    server: DemoServer
    client: httpx.AsyncClient
    sse: SSEReader
    ws: WebSocketConnection


@asynccontextmanager
async def _open_demo() -> AsyncIterator[Demo]:
    async with (
        running_demo(ticker_interval=0, token=TOKEN) as server,
        httpx.AsyncClient(base_url=server.url, headers=_AUTH, timeout=SAFETY) as client,
        client.stream("GET", "/sse/bystander") as response,
        open_sse_reader(response) as sse,
        open_websocket_url(f"{server.ws_url}/ws/bystander?token={TOKEN}") as ws,
    ):
        assert response.status_code == 200
        await ws_receive(ws, "presence")  # it has joined: it is subscribed
        yield Demo(server, client, sse, ws)


async def _bystanders_still_served(demo: Demo) -> None:
    """A publish after the bad input reaches the SSE and the WebSocket bystander."""
    response = await demo.client.post("/api/topics/bystander", json={"data": "still here"})
    assert response.status_code == 201, response.text
    event_id = response.json()["id"]
    while True:  # bounded by the caller's fail_after
        (event,) = await demo.sse.events(1)
        if event.id == event_id:
            assert event.data == "still here"
            break
    message = await ws_receive(demo.ws, "message")
    assert (message["id"], message["data"]) == (event_id, "still here")
    assert (await demo.client.get("/healthz")).status_code == 200


def _http_outcome(response: httpx.Response) -> str:
    """``status "text the client reads"`` (the message of a JSON error object)."""
    text = response.text
    _no_leak(text)
    if not text:
        return str(response.status_code)
    if response.headers.get("content-type", "").startswith("application/json"):
        text = response.json()["error"]["message"]
    return f'{response.status_code} "{text.strip()}"'


class _Frames:
    """A codec sending frames exactly as given (str: text, bytes: binary), to send bad ones."""

    name = "frames"

    def encode(self, obj: Any) -> str | bytes:
        assert isinstance(obj, str | bytes)
        return obj

    def decode(self, frame: str | bytes) -> Any:
        return frame


async def _ws_closed(url: str, frames: list[str | bytes]) -> str:
    """Send ``frames``, wait for the server's close: ``close CODE "reason"``.

    The library's client (it closes its socket on a server close; trio-websocket's
    own client leaves it open) with one attempt: the close code is final.
    """
    try:
        async with open_websocket_client(url, codec=_Frames(), max_attempts=1) as ws:
            for frame in frames:
                try:
                    await ws.send(frame)
                except WebSocketClosed:
                    break  # closed mid-way (the rate limit): the reason comes next
            async for _ in ws:  # bounded by the caller's fail_after
                pass
    except Exception as failure:  # the close is this, or the cause of it
        await trio.lowlevel.checkpoint()
        return _close_outcome(failure)
    raise AssertionError("the server did not close the connection")


def _close_outcome(failure: BaseException) -> str:
    """``close CODE "reason"`` of the :class:`WebSocketClosed` that is ``failure`` or caused it.

    A close code that allows reconnecting, with no attempt left, comes out as
    the client's give-up error raised from the close.
    """
    closed: BaseException | None = failure
    while closed is not None and not isinstance(closed, WebSocketClosed):
        closed = closed.__cause__
    assert isinstance(closed, WebSocketClosed), repr(failure)
    _no_leak(closed.reason)
    return f'close {closed.code} "{closed.reason}"'


async def _ws_rejected(url: str, origin: str | None = None) -> str:
    """Open a WebSocket handshake on a raw socket: ``handshake STATUS`` (body checked)."""
    host_port, _, target = url.removeprefix("ws://").partition("/")
    host, _, port = host_port.rpartition(":")
    head = (
        f"GET /{target} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n"
    )
    if origin is not None:
        head += f"Origin: {origin}\r\n"
    async with await trio.open_tcp_stream(host, int(port)) as sock:
        await sock.send_all((head + "\r\n").encode())
        response = b""
        while True:  # bounded by the caller's fail_after
            head_end = response.find(b"\r\n\r\n")
            if head_end >= 0:
                length = re.search(rb"(?i)content-length: *(\d+)", response[:head_end])
                if len(response) >= head_end + 4 + int(length[1] if length else 0):
                    break
            chunk = await sock.receive_some()
            if not chunk:
                break
            response += chunk
    _no_leak(response.decode("latin-1"))
    return f"handshake {int(response.split(b' ', 2)[1])}"


DemoRunner = Callable[[Demo], Awaitable[str]]
_DEMO_RUNNERS: dict[str, DemoRunner] = {}


def _demo_case(case_id: str) -> Callable[[DemoRunner], DemoRunner]:
    def register(runner: DemoRunner) -> DemoRunner:
        _DEMO_RUNNERS[case_id] = runner
        return runner

    return register


@_demo_case("last-event-id-malformed")
async def _last_event_id_malformed(demo: Demo) -> str:
    response = await demo.client.get("/sse/t", headers=[(b"last-event-id", b"caf\xe9")])
    return _http_outcome(response)


@_demo_case("last-event-id-too-long")
async def _last_event_id_too_long(demo: Demo) -> str:
    response = await demo.client.get("/sse/t", headers={"last-event-id": "7" * 257})
    return _http_outcome(response)


@_demo_case("topic-invalid")
async def _topic_invalid(demo: Demo) -> str:
    return _http_outcome(await demo.client.get("/sse/a%20b"))


@_demo_case("topic-crlf")
async def _topic_crlf(demo: Demo) -> str:
    return _http_outcome(await demo.client.get("/sse/a%0D%0Aevent:x"))


@_demo_case("topic-too-long")
async def _topic_too_long(demo: Demo) -> str:
    return _http_outcome(await demo.client.get("/sse/" + "t" * 201))


@_demo_case("header-too-large")
async def _header_too_large(demo: Demo) -> str:
    return _http_outcome(await demo.client.get("/healthz", headers={"x-big": "b" * 20_000}))


async def _publish_raw(demo: Demo, body: bytes, **headers: str) -> str:
    response = await demo.client.post(
        "/api/topics/t", content=body, headers={"content-type": "application/json", **headers}
    )
    return _http_outcome(response)


@_demo_case("publish-too-large")
async def _publish_too_large(demo: Demo) -> str:
    body = json.dumps({"data": "x" * (demo.server.config.max_body_size + 1)}).encode()
    return await _publish_raw(demo, body)


@_demo_case("publish-not-json")
async def _publish_not_json(demo: Demo) -> str:
    return await _publish_raw(demo, b"{not json")


@_demo_case("publish-not-object")
async def _publish_not_object(demo: Demo) -> str:
    return await _publish_raw(demo, b"[1, 2]")


@_demo_case("publish-no-data")
async def _publish_no_data(demo: Demo) -> str:
    return await _publish_raw(demo, b'{"event": "x"}')


@_demo_case("publish-deeply-nested")
async def _publish_deeply_nested(demo: Demo) -> str:
    return await _publish_raw(demo, b"[" * 100_000)


@_demo_case("publish-event-newline")
async def _publish_event_newline(demo: Demo) -> str:
    return await _publish_raw(demo, json.dumps({"data": "x", "event": "a\ndata: y"}).encode())


@_demo_case("publish-unauthenticated")
async def _publish_unauthenticated(demo: Demo) -> str:
    return await _publish_raw(demo, b'{"data": "x"}', authorization="")


@_demo_case("chat-unauthenticated")
async def _chat_unauthenticated(demo: Demo) -> str:
    body = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
    response = await demo.client.post(
        "/v1/chat/completions", json=body, headers={"authorization": ""}
    )
    return _http_outcome(response)


@_demo_case("chat-bad-body")
async def _chat_bad_body(demo: Demo) -> str:
    response = await demo.client.post("/v1/chat/completions", json={"messages": "hi"})
    return _http_outcome(response)


@_demo_case("ws-bad-origin")
async def _ws_bad_origin(demo: Demo) -> str:
    return await _ws_rejected(demo.server.ws_url + "/ws/t", origin="https://evil.example")


@_demo_case("ws-wrong-token")
async def _ws_wrong_token(demo: Demo) -> str:
    return await _ws_rejected(demo.server.ws_url + "/ws/t?token=wrong")


@_demo_case("ws-invalid-topic")
async def _ws_invalid_topic(demo: Demo) -> str:
    return await _ws_rejected(demo.server.ws_url + "/ws/a%20b")


async def _ws_send(demo: Demo, frames: list[str | bytes], *, token: bool = True) -> str:
    query = f"?token={TOKEN}" if token else ""
    return await _ws_closed(f"{demo.server.ws_url}/ws/t{query}", frames)


@_demo_case("ws-publish-without-token")
async def _ws_publish_without_token(demo: Demo) -> str:
    return await _ws_send(demo, ['{"data": "x"}'], token=False)


@_demo_case("ws-too-big")
async def _ws_too_big(demo: Demo) -> str:
    return await _ws_send(demo, ["x" * (demo.server.config.max_body_size + 1)])


@_demo_case("ws-not-json")
async def _ws_not_json(demo: Demo) -> str:
    return await _ws_send(demo, ["{not json"])


@_demo_case("ws-wrong-shape")
async def _ws_wrong_shape(demo: Demo) -> str:
    return await _ws_send(demo, ["[1, 2]"])


@_demo_case("ws-binary-not-utf8")
async def _ws_binary_not_utf8(demo: Demo) -> str:
    return await _ws_send(demo, [b"\xff\xfe"])


@_demo_case("ws-rate")
async def _ws_rate(demo: Demo) -> str:
    return await _ws_send(demo, [json.dumps({"data": n}) for n in range(300)])


# -- cases with servers of their own ---------------------------------------------------


async def _topic_unknown() -> str:
    async with open_hub() as hub:
        router = Router()
        router.add("/sse/{topic}", hub_endpoint(hub, topics={"news"}))
        async with (
            open_test_server(router) as server,
            httpx.AsyncClient(base_url=server.url, timeout=SAFETY) as client,
        ):
            outcome = _http_outcome(await client.get("/sse/other"))
            await _sse_still_served(client, hub, "/sse/news", "news")
    return outcome


async def _sse_still_served(
    client: httpx.AsyncClient, hub: Hub | None, path: str, topic: str
) -> None:
    """Another client of the same server gets its stream (and an event published on it)."""
    async with client.stream("GET", path) as response, open_sse_reader(response) as reader:
        assert response.status_code == 200
        if hub is not None:
            await reader.chunk()  # the preamble: it is subscribed
            await hub.publish(topic, Event("still here"))
        (event,) = await reader.events(1)
        assert event.data == "still here"


def _hostile_sse(events: dict[str, Event]) -> Router:
    """``GET /{name}``: one SSE response sending ``events[name]`` (a bad one, or a good one)."""

    def route(event: Event) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
        async def producer(send_channel: trio.MemorySendChannel[Event]) -> None:
            await send_channel.send(event)
            await trio.sleep_forever()  # the client ends it

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await EventStream(producer)(scope, receive, send)

        return app

    router = Router()
    for name, event in events.items():
        router.add(f"/{name}", route(event))
    return router


async def _client_decode_failure(bad: Event) -> str:
    router = _hostile_sse({"bad": bad, "good": Event("still here")})
    async with open_test_server(router) as server:

        async def read_all() -> None:
            async with open_event_source(
                server.url + "/bad", max_line_length=1024, max_event_size=4096, max_retries=0
            ) as source:
                async for _ in source:
                    pass

        with pytest.raises(SSEDecodeError) as failure:
            await read_all()
        async with httpx.AsyncClient(base_url=server.url, timeout=SAFETY) as client:
            await _sse_still_served(client, None, "/good", "")
    return f"`{type(failure.value).__name__}` from `open_event_source`"


async def _sse_line_too_long() -> str:
    return await _client_decode_failure(Event("x" * 2000))


async def _sse_event_too_large() -> str:
    return await _client_decode_failure(Event("\n".join(["y" * 100] * 100)))


async def _bad_chunk_upstream(scope: Scope, receive: Receive, send: Send) -> None:
    """An OpenAI-compatible upstream whose stream breaks after its first chunk."""
    choice = {"index": 0, "delta": {"role": "assistant", "content": ""}}
    first = {"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": [choice]}
    headers = [(b"content-type", b"text/event-stream")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    body = b"data: " + json.dumps(first).encode() + b"\n\ndata: {not json\n\n"
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _llm_bad_chunk() -> str:
    async with (
        open_test_server(
            Router([Route("/v1/chat/completions", _bad_chunk_upstream, methods=["POST"])])
        ) as upstream,
        running_demo(ticker_interval=0, token=TOKEN, upstream=upstream.url + "/v1") as server,
        httpx.AsyncClient(base_url=server.url, headers=_AUTH, timeout=SAFETY) as client,
    ):
        body = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
        async with (
            client.stream("POST", "/v1/chat/completions", json=body) as response,
            open_sse_reader(response) as reader,
        ):
            events = await reader.rest()
        status = response.status_code
        _no_leak("".join(event.data for event in events))
        *_, error, done = events
        message = json.loads(error.data)["error"]["message"]
        assert done.data == "[DONE]"
        # The demo keeps serving: its own streams and publishing still work.
        await _sse_still_served_by_demo(client)
    return f'{status}, then the error chunk "{message}", then `[DONE]`'


async def _sse_still_served_by_demo(client: httpx.AsyncClient) -> None:
    async with (
        client.stream("GET", "/sse/bystander") as response,
        open_sse_reader(response) as reader,
    ):
        await reader.chunk()  # the preamble: it is subscribed
        published = await client.post("/api/topics/bystander", json={"data": "still here"})
        assert published.status_code == 201
        (event,) = await reader.events(1)
        assert event.data == "still here"


async def _chunk_not_json() -> str:
    await trio.lowlevel.checkpoint()
    with pytest.raises(ChunkDecodeError) as failure:
        ChatChunkParser().feed("{not json")
    ChatChunkParser().feed('{"choices": []}')  # a fresh parser (another stream) is unaffected
    return f"`{type(failure.value).__name__}`"


async def _who(scope: Scope) -> str | None:
    """An authentication hook: ``Bearer t-<name>`` is <name>; private.<name> is theirs only."""
    await trio.lowlevel.checkpoint()
    token = (header_value(scope, b"authorization") or b"").decode().removeprefix("Bearer ")
    user = token.removeprefix("t-") if token.startswith("t-") else None
    topic = scope.get("path_params", {}).get("topic", "")
    if user is not None and topic.startswith("private.") and topic != f"private.{user}":
        raise RequestRejected(403, "forbidden")
    return user


@asynccontextmanager
async def _guarded_hub(
    wrap: Callable[[ASGIApp], ASGIApp], *, outside_router: bool = False
) -> AsyncIterator[tuple[httpx.AsyncClient, Hub, SSEReader]]:
    """``/sse/{topic}`` and ``POST /publish`` behind ``wrap``, with one reader of "news" open.

    ``wrap`` goes around each route, or around the router (what CORS needs, to
    answer preflights before the router's 405 for ``OPTIONS``).
    """

    async def publish(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send_plain(send, 201, "published")

    async with open_hub() as hub:
        route = (lambda app: app) if outside_router else wrap
        router = Router(
            [
                Route("/sse/{topic}", route(hub_endpoint(hub, keepalive_interval=None))),
                Route("/publish", route(publish), methods=["POST"]),
            ]
        )
        async with (
            open_test_server(wrap(router) if outside_router else router) as server,
            httpx.AsyncClient(base_url=server.url, timeout=SAFETY, headers=_ADA) as client,
            client.stream("GET", "/sse/news") as response,
            open_sse_reader(response) as reader,
        ):
            assert response.status_code == 200
            await reader.chunk()  # the preamble: it is subscribed
            yield client, hub, reader


_ADA = {"authorization": "Bearer t-ada"}


async def _reader_still_served(hub: Hub, reader: SSEReader) -> None:
    await hub.publish("news", Event("still here"))
    (event,) = await reader.events(1)
    assert event.data == "still here"


def _with_retry_after(response: httpx.Response) -> str:
    return f"{_http_outcome(response)} + `Retry-After: {response.headers['retry-after']}`"


async def _sse_unauthenticated() -> str:
    async with _guarded_hub(lambda app: Authenticated(app, _who)) as (client, hub, reader):
        response = await client.get("/sse/news", headers={"authorization": ""})
        await _reader_still_served(hub, reader)
    return (
        f"{_http_outcome(response)} + `WWW-Authenticate: {response.headers['www-authenticate']}`"
    )


async def _sse_forbidden_topic() -> str:
    async with _guarded_hub(lambda app: Authenticated(app, _who)) as (client, hub, reader):
        response = await client.get("/sse/private.ada", headers={"authorization": "Bearer t-bob"})
        await _reader_still_served(hub, reader)
    return _http_outcome(response)


async def _one_stream_too_many(*, max_connections: int = 10, max_per_client: int = 10) -> str:
    """A second stream through ``ConnectionLimits`` that admit only one."""
    limit = functools.partial(
        ConnectionLimits, max_connections=max_connections, max_per_client=max_per_client
    )
    async with _guarded_hub(limit) as (client, hub, reader):
        response = await client.get("/sse/other")
        await _reader_still_served(hub, reader)
    return _with_retry_after(response)


async def _publish_rate_exceeded() -> str:
    limit = functools.partial(RateLimit, rate=1.0, burst=2)
    async with _guarded_hub(limit) as (client, hub, reader):
        answers = [await client.post("/publish", content=b"x") for _ in range(3)]
        assert [a.status_code for a in answers[:2]] == [201, 201]
        await _reader_still_served(hub, reader)
    return _with_retry_after(answers[2])


async def _cors_preflight_refused() -> str:
    allowed = functools.partial(CORS, allow_origins=["https://app.example.com"])
    async with _guarded_hub(allowed, outside_router=True) as (client, hub, reader):
        asked = {"origin": "https://evil.example.net", "access-control-request-method": "GET"}
        response = await client.options("/sse/news", headers=asked)
        assert not [k for k in response.headers if k.startswith("access-control-")]
        await _reader_still_served(hub, reader)
    return f"{_http_outcome(response)} (no `Access-Control-*` header)"


_OWN_RUNNERS: dict[str, Callable[[], Awaitable[str]]] = {
    "topic-unknown": _topic_unknown,
    "sse-line-too-long": _sse_line_too_long,
    "sse-event-too-large": _sse_event_too_large,
    "llm-bad-chunk": _llm_bad_chunk,
    "chunk-not-json": _chunk_not_json,
    "sse-unauthenticated": _sse_unauthenticated,
    "sse-forbidden-topic": _sse_forbidden_topic,
    "sse-too-many-per-client": functools.partial(_one_stream_too_many, max_per_client=1),
    "sse-server-full": functools.partial(_one_stream_too_many, max_connections=1),
    "publish-rate-exceeded": _publish_rate_exceeded,
    "cors-preflight-refused": _cors_preflight_refused,
}


# -- the tests -------------------------------------------------------------------------


def _logged(caplog: pytest.LogCaptureFixture, logged: str) -> None:
    if logged == "-":
        return
    name, level = logged.split()
    levels = {logging.getLevelName(r.levelno) for r in caplog.records if r.name == name}
    assert level in levels, [(r.name, r.levelname, r.getMessage()) for r in caplog.records]


def test_every_case_has_a_runner() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(_DEMO_RUNNERS) | set(_OWN_RUNNERS)
    assert not set(_DEMO_RUNNERS) & set(_OWN_RUNNERS)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_bad_input(case: BadInput, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="trio_stream")
    with trio.fail_after(SAFETY):
        if case.id in _OWN_RUNNERS:
            outcome = await _OWN_RUNNERS[case.id]()
        else:
            async with _open_demo() as demo:
                caplog.clear()  # only what the bad input logged
                outcome = await _DEMO_RUNNERS[case.id](demo)
                _logged(caplog, case.logged)
                await _bystanders_still_served(demo)
    assert outcome == case.outcome
    _logged(caplog, case.logged)


def test_docs_table_is_the_cases() -> None:
    text = DOCS.read_text(encoding="utf-8")
    start = text.index(TABLE_START) + len(TABLE_START)
    end = text.index(TABLE_END)
    assert text[start:end].strip("\n") + "\n" == markdown_table()


def test_markdown_table_escapes_pipes() -> None:
    case = BadInput("x", "a|b", "in", "out", "-")
    assert markdown_table((case,)).splitlines()[-1] == "| a\\|b | in | out | - |"
