"""EventStream in memory (streaming transport, autojump clock): wire format, lifecycle, errors."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable

import pytest
import trio
import trio.testing

from trio_stream.protocol import Event
from trio_stream.sse import (
    DEFAULT_ERROR_EVENT,
    EventStream,
    Producer,
    StreamStatistics,
    sse_response,
)
from trio_stream.sse._asgi import ASGIApp, Message, Receive, Scope, Send
from trio_stream.testing import open_asgi_client, open_sse_reader


def app_for(make: Callable[[], EventStream]) -> ASGIApp:
    """An ASGI app building a fresh EventStream per request with ``make()``."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await make()(scope, receive, send)

    return app


def numbers(count: int) -> Producer:
    async def produce(send_channel: trio.MemorySendChannel[Event]) -> None:
        async with send_channel:
            for i in range(count):
                await send_channel.send(Event(str(i), id=str(i)))

    return produce


def then_forever(first: Event, steps: list[str]) -> Producer:
    async def produce(send_channel: trio.MemorySendChannel[Event]) -> None:
        try:
            await send_channel.send(first)
            await trio.sleep_forever()
        finally:
            steps.append("finally")

    return produce


async def test_headers_preamble_and_events() -> None:
    app = app_for(lambda: EventStream(numbers(3), retry=2500))
    async with open_asgi_client(app) as client, client.stream("GET", "/") as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        assert "content-encoding" not in response.headers
        body = await response.aread()
    assert body.startswith(b":\nretry: 2500\n\n")
    assert body.endswith(b"id: 2\ndata: 2\n\n")


async def test_sse_response_with_extra_headers() -> None:
    app = app_for(lambda: sse_response(numbers(1), headers={"X-Trace": "abc"}))
    async with open_asgi_client(app) as client:
        response = await client.get("/")
    assert response.headers["x-trace"] == "abc"
    assert response.content.endswith(b"id: 0\ndata: 0\n\n")


async def test_async_generators_run_and_are_closed_by_the_stream() -> None:
    steps: list[str] = []

    async def endless() -> AsyncIterator[Event]:  # noqa: ASYNC900  EventStream runs and acloses it
        try:
            i = 0
            while True:  # bounded by the channel: it parks at yield once the reader stops
                await trio.lowlevel.checkpoint()
                yield Event(str(i))
                i += 1
        finally:
            steps.append("closed")

    app = app_for(lambda: EventStream(endless(), capacity=2))
    async with open_asgi_client(app, capacity=1) as client:
        async with client.stream("GET", "/") as response, open_sse_reader(response) as reader:
            assert [e.data for e in await reader.events(3)] == ["0", "1", "2"]
            await trio.testing.wait_all_tasks_blocked()  # parked at yield
        await trio.testing.wait_all_tasks_blocked()
    assert steps == ["closed"]


async def test_safe_channel_generators_are_sources_too(autojump_clock: trio.abc.Clock) -> None:
    steps: list[str] = []

    @trio.as_safe_channel
    async def ticks() -> AsyncGenerator[Event]:
        try:
            for i in range(2):
                await trio.sleep(1)
                yield Event(f"tick {i}")
            await trio.sleep_forever()
        finally:
            steps.append("finally")

    app = app_for(lambda: EventStream(ticks()))
    async with open_asgi_client(app) as client:
        async with client.stream("GET", "/") as response, open_sse_reader(response) as reader:
            assert [e.data for e in await reader.events(2)] == ["tick 0", "tick 1"]
        await trio.testing.wait_all_tasks_blocked()
    assert steps == ["finally"]


async def test_head_gets_headers_and_no_body() -> None:
    started: list[bool] = []

    async def producer(send_channel: trio.MemorySendChannel[Event]) -> None:
        await trio.lowlevel.checkpoint()
        started.append(True)

    async with open_asgi_client(app_for(lambda: EventStream(producer))) as client:
        response = await client.head("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.content == b""
    assert started == []


async def test_disconnect_cancels_the_producer_and_runs_its_finally() -> None:
    steps: list[str] = []
    app = app_for(lambda: EventStream(then_forever(Event("hello"), steps)))
    async with open_asgi_client(app) as client:
        async with client.stream("GET", "/") as response, open_sse_reader(response) as reader:
            assert [e.data for e in await reader.events(1)] == ["hello"]
        await trio.testing.wait_all_tasks_blocked()
        assert steps == ["finally"]


async def test_slow_reader_slows_the_producer() -> None:
    produced: list[int] = []

    async def producer(send_channel: trio.MemorySendChannel[Event]) -> None:
        for i in range(1000):
            await send_channel.send(Event(str(i)))
            produced.append(i)

    app = app_for(lambda: EventStream(producer, capacity=4, max_batch=2))
    async with (
        open_asgi_client(app, capacity=1) as client,
        client.stream("GET", "/") as response,
        open_sse_reader(response) as reader,
    ):
        await reader.chunk()  # the preamble
        for _ in range(3):
            await trio.testing.wait_all_tasks_blocked()
            delivered = sum(chunk.count(b"data: ") for chunk in reader.chunks)
            # Stalled, ahead of the client by at most: the channel (4), a batch
            # in the writer's hands (2) and the transport's one message (2).
            assert len(produced) - delivered <= 4 + 2 + 2
            await reader.events(4)
    assert len(produced) < 1000


async def test_backlog_is_written_in_one_send() -> None:
    release = trio.Event()

    async def producer(send_channel: trio.MemorySendChannel[Event]) -> None:
        for i in range(4):
            await send_channel.send(Event(f"filler {i}"))
        await release.wait()
        for i in range(5):
            await send_channel.send(Event(f"queued {i}"))

    app = app_for(lambda: EventStream(producer, capacity=8))
    async with (
        open_asgi_client(app, capacity=1) as client,
        client.stream("GET", "/") as response,
        open_sse_reader(response) as reader,
    ):
        # Nobody reads: the writer is stuck in a send while events queue up.
        await trio.testing.wait_all_tasks_blocked()
        release.set()
        await trio.testing.wait_all_tasks_blocked()
        events = await reader.rest()
    assert [e.data for e in events][-5:] == [f"queued {i}" for i in range(5)]
    sizes = [chunk.count(b"data: ") for chunk in reader.chunks]
    assert max(sizes) > 1, sizes


async def test_keepalive_comments_follow_the_interval(autojump_clock: trio.abc.Clock) -> None:
    gate = trio.Event()

    async def quiet(send_channel: trio.MemorySendChannel[Event]) -> None:
        await gate.wait()
        await send_channel.send(Event("late"))
        await trio.sleep_forever()

    app = app_for(lambda: EventStream(quiet, keepalive_interval=15.0))
    async with (
        open_asgi_client(app) as client,
        client.stream("GET", "/") as response,
        open_sse_reader(response) as reader,
    ):
        start = trio.current_time()
        assert await reader.chunk() == b":\n\n"  # preamble: flushes headers at once
        assert trio.current_time() == start
        for n in range(1, 4):
            assert await reader.chunk() == b":\n"
            assert trio.current_time() - start == pytest.approx(15.0 * n)
        gate.set()
        assert [e.data for e in await reader.events(1)] == ["late"]
        # An event resets the idle timer: the next keepalive is 15 s after it.
        event_time = trio.current_time()
        assert await reader.chunk() == b":\n"
        assert trio.current_time() - event_time == pytest.approx(15.0)
        assert reader.comments == 5


async def test_no_keepalives_when_disabled(autojump_clock: trio.abc.Clock) -> None:
    steps: list[str] = []
    app = app_for(lambda: EventStream(then_forever(Event("x"), steps), keepalive_interval=None))
    async with (
        open_asgi_client(app) as client,
        client.stream("GET", "/") as response,
        open_sse_reader(response) as reader,
    ):
        await reader.events(1)
        with trio.move_on_after(3600):
            await reader.chunk()
        assert reader.comments == 1  # the preamble only


async def test_producer_error_sends_a_sanitised_error_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(send_channel: trio.MemorySendChannel[Event]) -> None:
        await send_channel.send(Event("before"))
        raise RuntimeError("secret database password")

    async with open_asgi_client(app_for(lambda: EventStream(broken))) as client:
        body = (await client.get("/")).content
    assert b"secret" not in body
    assert b"Traceback" not in body
    assert body.endswith(DEFAULT_ERROR_EVENT.encode())
    assert b"data: before" in body
    record = next(r for r in caplog.records if r.name == "trio_stream.sse")
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert "secret database password" in str(record.exc_info[1])


async def test_non_event_items_end_the_stream_with_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def wrong(send_channel: trio.MemorySendChannel[Event]) -> None:
        await send_channel.send("not an event")  # type: ignore[arg-type]

    custom = Event("oops", event="error")
    app = app_for(lambda: EventStream(wrong, error_event=custom))
    async with open_asgi_client(app) as client:
        body = (await client.get("/")).content
    assert body.endswith(custom.encode())
    assert any("misbehaved" in r.getMessage() for r in caplog.records)


async def test_shutdown_event_ends_the_stream_cleanly_and_refuses_new_ones() -> None:
    shutdown = trio.Event()
    steps: list[str] = []
    app = app_for(lambda: EventStream(then_forever(Event("one"), steps), shutdown_event=shutdown))
    async with open_asgi_client(app) as client:
        async with client.stream("GET", "/") as response, open_sse_reader(response) as reader:
            await reader.events(1)
            shutdown.set()
            assert await reader.rest() == []
            assert reader.ended
        assert steps == ["finally"]
        refused = await client.get("/")
    assert refused.status_code == 503
    assert refused.text == "server shutting down"


async def test_lifespan_is_acknowledged() -> None:
    sent: list[str] = []
    messages = iter(
        [{"type": "lifespan.startup"}, {"type": "lifespan.unknown"}, {"type": "lifespan.shutdown"}]
    )

    async def receive() -> Message:
        await trio.lowlevel.checkpoint()
        return next(messages)

    async def send(message: Message) -> None:
        await trio.lowlevel.checkpoint()
        sent.append(message["type"])

    await EventStream(numbers(1))({"type": "lifespan"}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_websocket_scope_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    async def never() -> Message:
        await trio.lowlevel.checkpoint()
        raise AssertionError("not called")

    async def never_send(message: Message) -> None:
        await never()

    await EventStream(numbers(1))({"type": "websocket"}, never, never_send)
    assert "only http is served" in caplog.text


def test_constructor_validates_its_arguments() -> None:
    with pytest.raises(ValueError, match="keepalive_interval"):
        EventStream(numbers(1), keepalive_interval=0)
    with pytest.raises(ValueError, match="send_timeout"):
        EventStream(numbers(1), send_timeout=0)
    with pytest.raises(ValueError, match="capacity"):
        EventStream(numbers(1), capacity=0)
    with pytest.raises(ValueError, match="CR, LF"):
        EventStream(numbers(1), headers=[("x-a", "b\r\nc: d")])
    with pytest.raises(TypeError, match="needs a source"):
        EventStream()
    with pytest.raises(TypeError, match="async iterable"):
        EventStream(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="either a source"):
        sse_response(numbers(1), hub=object(), topic="t")  # type: ignore[arg-type]


async def test_statistics_follow_the_response(autojump_clock: trio.abc.Clock) -> None:
    gate = trio.Event()

    async def producer(send_channel: trio.MemorySendChannel[Event]) -> None:
        for i in range(3):
            await send_channel.send(Event(str(i)))
        await gate.wait()

    stream = EventStream(producer, capacity=8, keepalive_interval=10.0)
    assert stream.statistics() == StreamStatistics(0, 0, 0, 0, 0, False)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await stream(scope, receive, send)

    async with (
        open_asgi_client(app) as client,
        client.stream("GET", "/") as response,
        open_sse_reader(response) as reader,
    ):
        await reader.events(3)
        await reader.chunk()  # a keepalive, 10 s later
        await trio.testing.wait_all_tasks_blocked()  # the writer counted it
        stats = stream.statistics()
        assert (stats.events, stats.keepalives, stats.capacity) == (3, 1, 8)
        assert stats.streaming
        assert stats.queued == 0
        assert 2 <= stats.writes <= 5  # preamble, 1 to 3 batches, keepalive
        gate.set()
        await reader.rest()
    assert not stream.statistics().streaming


async def test_a_reader_that_stops_reading_is_cut_by_send_timeout(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    steps: list[str] = []

    async def flood(send_channel: trio.MemorySendChannel[Event]) -> None:
        try:
            for i in range(1000):
                await send_channel.send(Event(str(i)))
        finally:
            steps.append("finally")

    app = app_for(lambda: EventStream(flood, capacity=2, send_timeout=5.0))
    async with (
        open_asgi_client(app, capacity=1) as client,
        client.stream("GET", "/") as response,
        open_sse_reader(response) as reader,
    ):
        start = trio.current_time()
        await reader.chunk()
        # Not reading: the writer's send blocks; after 5 s the stream is cut.
        await trio.sleep(60)
        assert steps == ["finally"]
        assert "client not reading" in caplog.text
        rest = await reader.rest()
        assert len(rest) < 10
        assert trio.current_time() - start == pytest.approx(60)


async def test_a_send_that_raises_ends_the_stream_quietly() -> None:
    """Servers such as uvicorn raise OSError on a send after a disconnect."""
    steps: list[str] = []
    sent: list[Message] = []

    async def receive() -> Message:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        await trio.lowlevel.checkpoint()
        if message["type"] == "http.response.body" and len(sent) > 1:
            raise OSError("client disconnected")
        sent.append(message)

    stream = EventStream(then_forever(Event("x"), steps))
    await stream({"type": "http", "method": "GET", "headers": []}, receive, send)
    assert steps == ["finally"]
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]


async def test_a_send_that_returns_after_send_timeout_counts_as_a_timeout(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Hypercorn shields its socket writes: a stuck send returns late instead of failing."""
    steps: list[str] = []

    async def receive() -> Message:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def slow_send(message: Message) -> None:
        with trio.CancelScope(shield=True):
            await trio.sleep(10)

    stream = EventStream(then_forever(Event("x"), steps), send_timeout=1.0)
    await stream({"type": "http", "method": "GET", "headers": []}, receive, slow_send)
    assert steps == ["finally"]
    assert "did not complete within 1 s" in caplog.text


async def test_a_failing_keepalive_ends_the_stream(autojump_clock: trio.abc.Clock) -> None:
    steps: list[str] = []
    bodies: list[bytes] = []

    async def quiet(send_channel: trio.MemorySendChannel[Event]) -> None:
        try:
            await trio.sleep_forever()
        finally:
            steps.append("finally")

    async def receive() -> Message:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        await trio.lowlevel.checkpoint()
        if message["type"] == "http.response.body":
            if bodies:
                raise OSError("gone")
            bodies.append(message["body"])

    stream = EventStream(quiet, keepalive_interval=5.0)
    await stream({"type": "http", "method": "GET", "headers": []}, receive, send)
    assert steps == ["finally"]
    assert bodies == [b":\n\n"]
    assert trio.current_time() == pytest.approx(5.0)


class Countdown:
    """An async iterator that is not a generator (no ``aclose``)."""

    def __init__(self, start: int) -> None:
        self.left = start

    def __aiter__(self) -> Countdown:
        return self

    async def __anext__(self) -> Event:
        await trio.lowlevel.checkpoint()
        if self.left == 0:
            raise StopAsyncIteration
        self.left -= 1
        return Event(str(self.left))


async def test_finite_async_iterables_end_the_stream() -> None:
    async with open_asgi_client(app_for(lambda: EventStream(Countdown(3)))) as client:
        body = (await client.get("/")).content
    assert body.endswith(b"data: 2\n\ndata: 1\n\ndata: 0\n\n")


async def test_a_hot_producer_gets_large_writes() -> None:
    async def hot(send_channel: trio.MemorySendChannel[Event]) -> None:
        async with send_channel:
            for i in range(500):
                await send_channel.send(Event(str(i)))

    stream = EventStream(hot, capacity=64)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await stream(scope, receive, send)

    async with open_asgi_client(app) as client:
        body = (await client.get("/")).content
    assert body.count(b"data: ") == 500
    assert stream.statistics().writes < 500 / 8  # preamble + a few large batches


async def test_coalescing_never_holds_events_back(autojump_clock: trio.abc.Clock) -> None:
    async def pair_then_pause(send_channel: trio.MemorySendChannel[Event]) -> None:
        await send_channel.send(Event("a"))
        await send_channel.send(Event("b"))
        await trio.sleep(3600)

    app = app_for(lambda: EventStream(pair_then_pause, capacity=1))
    async with (
        open_asgi_client(app) as client,
        client.stream("GET", "/") as response,
        open_sse_reader(response) as reader,
    ):
        assert [e.data for e in await reader.events(2)] == ["a", "b"]
        assert trio.current_time() == 0
