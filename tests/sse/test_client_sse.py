"""open_event_source against real Hypercorn: headers, statuses, POST, errors, cleanup."""

from __future__ import annotations

import json
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import trio

from trio_stream.protocol import Backoff, Event, SSEDecodeError
from trio_stream.sse import (
    EventSource,
    SSEResponseError,
    SSERetriesExhaustedError,
    SSEServerError,
    SSEStreamEndedError,
    open_event_source,
)
from trio_stream.sse._asgi import Receive, Scope, Send, handle_lifespan
from trio_stream.testing import open_test_server

SAFETY = 10  # seconds: a bound on each test, never a wait for something to happen


def fast_backoff() -> Backoff:
    return Backoff(initial=0.001, maximum=0.005, jitter=0.0)


@dataclass
class Answer:
    """One scripted response: status, content type, body chunks; ``hold`` keeps it open."""

    status: int = 200
    content_type: str = "text/event-stream"
    chunks: Sequence[bytes] = ()
    hold: bool = False


@dataclass
class Seen:
    method: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Scripted:
    """An ASGI app answering request n with answers[n] (the last one repeats)."""

    answers: list[Answer]
    seen: list[Seen] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await handle_lifespan(receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.seen.append(Seen(scope["method"], headers, body))
        answer = self.answers[min(len(self.seen), len(self.answers)) - 1]
        start_headers = [(b"content-type", answer.content_type.encode())]
        await send(
            {"type": "http.response.start", "status": answer.status, "headers": start_headers}
        )
        for chunk in answer.chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if answer.hold:
            while (await receive())["type"] != "http.disconnect":
                pass
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def collect(source: EventSource) -> list[Event]:
    return [event async for event in source]


async def test_events_then_reconnect_with_last_event_id_then_204_stops() -> None:
    app = Scripted(
        [
            Answer(chunks=[b"id: 1\ndata: one\n\n", b"id: 2\nevent: tick\ndata: t", b"wo\n\n"]),
            Answer(status=204),
        ]
    )
    with trio.fail_after(SAFETY):
        async with (
            open_test_server(app) as server,
            open_event_source(server.url, backoff=fast_backoff()) as source,
        ):
            events = await collect(source)
            stats = source.statistics()
    assert events == [Event("one", "message", "1"), Event("two", "tick", "2")]
    first, second = app.seen
    assert first.headers["accept"] == "text/event-stream"
    assert first.headers["cache-control"] == "no-cache"
    assert "last-event-id" not in first.headers
    assert second.headers["last-event-id"] == "2"
    assert source.last_event_id == "2"
    assert source.url == server.url
    assert (stats.state, stats.connections, stats.attempts, stats.reconnects) == (
        "closed",
        1,
        2,
        1,
    )
    assert (stats.events, stats.status_code, stats.bytes_received) == (2, 204, 46)
    assert isinstance(stats.last_error, SSEStreamEndedError)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"last_event_id": "é-41"}, "é-41"),  # sent UTF-8 encoded
        ({"headers": {"last-event-id": "9"}}, "9"),  # a header seeds it too
    ],
)
async def test_first_request_sends_the_given_last_event_id(
    options: dict[str, Any], expected: str
) -> None:
    app = Scripted([Answer(status=204)])
    with trio.fail_after(SAFETY):
        async with (
            open_test_server(app) as server,
            open_event_source(server.url, **options) as source,
        ):
            assert await collect(source) == []
    assert app.seen[0].headers["last-event-id"] == expected
    assert source.last_event_id == expected


async def test_server_id_reset_stops_sending_last_event_id() -> None:
    app = Scripted([Answer(chunks=[b"id: 7\ndata: a\n\nid\ndata: b\n\n"]), Answer(status=204)])
    with trio.fail_after(SAFETY):
        async with (
            open_test_server(app) as server,
            open_event_source(server.url, backoff=fast_backoff()) as source,
        ):
            events = await collect(source)
    assert [e.id for e in events] == ["7", ""]
    assert "last-event-id" not in app.seen[1].headers
    assert source.last_event_id == ""


@pytest.mark.parametrize(
    ("answer", "content_type"),
    [
        (Answer(status=404, content_type="text/plain"), "text/plain"),
        (Answer(status=200, content_type="text/html; charset=utf-8"), "text/html; charset=utf-8"),
        (Answer(status=301, content_type="text/plain"), "text/plain"),
    ],
)
async def test_fatal_answer_raises_typed_error_with_status_without_retrying(
    answer: Answer, content_type: str
) -> None:
    app = Scripted([answer])
    with trio.fail_after(SAFETY):
        async with (
            open_test_server(app) as server,
            open_event_source(server.url, backoff=fast_backoff()) as source,
        ):
            with pytest.raises(SSEResponseError) as info:
                await collect(source)
            with pytest.raises(SSEResponseError):  # iterating again raises it again
                await source.__anext__()
    assert info.value.status_code == answer.status
    assert info.value.content_type == content_type
    assert len(app.seen) == 1
    stats = source.statistics()
    assert stats.state == "closed"
    assert stats.last_error is info.value


async def test_event_stream_content_type_with_parameters_is_accepted() -> None:
    app = Scripted(
        [Answer(content_type="Text/Event-Stream; charset=utf-8", chunks=[b"data: x\n\n"])]
    )
    with trio.fail_after(SAFETY):
        async with (
            open_test_server(app) as server,
            open_event_source(server.url, reconnect_on_close=False) as source,
        ):
            assert [e.data for e in await collect(source)] == ["x"]


async def test_5xx_is_retried_then_the_stream_recovers() -> None:
    app = Scripted([Answer(status=500), Answer(status=503), Answer(chunks=[b"data: ok\n\n"])])
    with trio.fail_after(SAFETY):
        async with (
            open_test_server(app) as server,
            open_event_source(
                server.url, backoff=fast_backoff(), reconnect_on_close=False, max_retries=None
            ) as source,
        ):
            assert [e.data for e in await collect(source)] == ["ok"]
    assert len(app.seen) == 3
    stats = source.statistics()
    assert (stats.failures, stats.reconnects, stats.connections) == (0, 2, 1)
    assert isinstance(stats.last_error, SSEServerError)
    assert stats.last_error.status_code == 503


async def test_5xx_until_the_budget_is_spent_raises_from_the_last_cause() -> None:
    app = Scripted([Answer(status=502)])
    with trio.fail_after(SAFETY):
        async with (
            open_test_server(app) as server,
            open_event_source(server.url, backoff=fast_backoff(), max_retries=2) as source,
        ):
            with pytest.raises(SSERetriesExhaustedError) as info:
                await collect(source)
    assert len(app.seen) == 3  # the first attempt and two retries
    assert (info.value.attempts, info.value.status_code) == (3, 502)
    assert isinstance(info.value.__cause__, SSEServerError)
    assert info.value.__cause__.status_code == 502


async def test_empty_answers_count_as_failures() -> None:
    app = Scripted([Answer()])  # 200 event-stream, no body, closed at once
    with trio.fail_after(SAFETY):
        async with (
            open_test_server(app) as server,
            open_event_source(server.url, backoff=fast_backoff(), max_retries=1) as source,
        ):
            with pytest.raises(SSERetriesExhaustedError, match="ended the stream") as info:
                await collect(source)
    assert isinstance(info.value.__cause__, SSEStreamEndedError)
    assert info.value.status_code is None
    assert len(app.seen) == 2


async def test_network_errors_are_retried_then_raise_from_the_transport_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with trio.fail_after(SAFETY):
        async with open_event_source(
            f"http://127.0.0.1:{port}/", backoff=fast_backoff(), max_retries=1
        ) as source:
            with pytest.raises(SSERetriesExhaustedError) as info:
                await collect(source)
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    stats = source.statistics()
    assert (stats.attempts, stats.connections, stats.state) == (2, 0, "closed")


async def test_read_timeout_counts_as_a_network_error() -> None:
    app = Scripted([Answer(chunks=[b": hello\n\n"], hold=True), Answer(status=204)])
    with trio.fail_after(SAFETY):
        async with (
            open_test_server(app) as server,
            open_event_source(server.url, backoff=fast_backoff(), read_timeout=0.2) as source,
        ):
            assert await collect(source) == []
    stats = source.statistics()
    assert isinstance(stats.last_error, httpx.ReadTimeout)
    assert stats.failures == 1  # the silent connection had sent a comment: the one failure


async def test_unsupported_scheme_fails_at_once() -> None:
    with trio.fail_after(SAFETY):
        async with open_event_source("ftp://127.0.0.1/x", backoff=fast_backoff()) as source:
            with pytest.raises(httpx.UnsupportedProtocol):
                await collect(source)
    assert source.statistics().attempts == 1


async def test_post_with_json_body_and_headers() -> None:
    app = Scripted([Answer(chunks=[b"data: answer\n\n"])])
    with trio.fail_after(SAFETY):
        async with (
            open_test_server(app) as server,
            open_event_source(
                server.url,
                method="post",
                json={"messages": [{"role": "user", "content": "hi"}]},
                headers={"Authorization": "Bearer t0k", "X-Trace": "abc"},
                reconnect_on_close=False,
            ) as source,
        ):
            assert [e.data for e in await collect(source)] == ["answer"]
    (seen,) = app.seen
    assert seen.method == "POST"
    assert json.loads(seen.body) == {"messages": [{"role": "user", "content": "hi"}]}
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["authorization"] == "Bearer t0k"
    assert seen.headers["x-trace"] == "abc"
    assert seen.headers["accept"] == "text/event-stream"


async def test_decoder_limit_is_fatal_after_the_events_before_it() -> None:
    app = Scripted([Answer(chunks=[b"data: ok\n\n"]), Answer(chunks=[b"data: " + b"x" * 99])])
    with trio.fail_after(SAFETY):
        async with (
            open_test_server(app) as server,
            open_event_source(server.url, max_line_length=32, backoff=fast_backoff()) as source,
        ):
            first = await source.__anext__()
            with pytest.raises(SSEDecodeError):
                await source.__anext__()
    assert first.data == "ok"
    assert len(app.seen) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"capacity": -1}, "capacity"),
        ({"capacity": 1.5}, "capacity"),
        ({"max_retries": -1}, "max_retries"),
        ({"last_event_id": "a\nb"}, "last_event_id"),
        ({"max_event_size": 0}, "max_event_size"),
    ],
)
async def test_bad_arguments_raise_value_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        async with open_event_source("http://127.0.0.1:9/", **kwargs):  # type: ignore[arg-type]
            pass  # pragma: no cover
