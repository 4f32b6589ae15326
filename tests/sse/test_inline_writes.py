"""A paced topic's events written by the publisher's task to waiting streams (real Hypercorn)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import h11
import pytest
import trio
import trio.testing

from tests.sse.test_direct_body import (
    RawResponse,
    open_loopback,
    open_raw,
    payload,
    receive_exactly,
)
from trio_stream.core import Hub
from trio_stream.protocol import Event
from trio_stream.sse import EventStream
from trio_stream.sse._asgi import Message, Receive, Scope, Send
from trio_stream.sse._direct import DirectBody
from trio_stream.sse._keepalive import _SWEEPER
from trio_stream.sse._writer import SHUTDOWN_SEND_GRACE, Writer
from trio_stream.testing import open_test_server

SAFETY = 60  # seconds of (autojumped) time: a bound on each test, never a wait
# More than the kernel takes at once for a client that does not read (and a
# line within the test reader's 1 MiB limit).
BIG = 1000 * 1024


class TopicApp:
    """Streams topic ``t`` of ``hub``; records each response's task and stream."""

    def __init__(self, hub: Hub, **options: Any) -> None:
        self.hub = hub
        self.options = options
        self.tasks: set[trio.lowlevel.Task] = set()
        self.streams: list[EventStream] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stream = EventStream.from_hub(self.hub, "t", **self.options)
        if scope["type"] == "http":  # not the lifespan
            self.tasks.add(trio.lowlevel.current_task())
            self.streams.append(stream)
        await stream(scope, receive, send)


class StepCounter(trio.abc.Instrument):
    """Counts the scheduler steps of the given tasks."""

    def __init__(self, tasks: set[trio.lowlevel.Task]) -> None:
        self.tasks = tasks
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task in self.tasks:
            self.steps += 1


@asynccontextmanager
async def counting_steps(tasks: set[trio.lowlevel.Task]) -> AsyncIterator[StepCounter]:
    """Count the steps of ``tasks`` in the block and until everything is blocked again."""
    counter = StepCounter(tasks)
    trio.lowlevel.add_instrument(counter)
    try:
        yield counter
        await trio.testing.wait_all_tasks_blocked()
    finally:
        trio.lowlevel.remove_instrument(counter)


async def events_until(sock: trio.socket.SocketType, response: RawResponse, count: int) -> None:
    """Read until ``response`` holds ``count`` events (framing checked by h11)."""
    while len(response.events) < count:
        event = response.connection.next_event()
        if event is h11.NEED_DATA:
            data = await sock.recv(65536)
            assert data, "the connection closed early"
            response.connection.receive_data(data)
        elif isinstance(event, h11.Data):
            response.events += response.decoder.feed(bytes(event.data))
        else:
            assert isinstance(event, h11.Response), event
    await trio.lowlevel.checkpoint()


@asynccontextmanager
async def subscribed(
    app: TopicApp, port: int, count: int
) -> AsyncIterator[list[tuple[trio.socket.SocketType, RawResponse]]]:
    """``count`` raw clients streaming the topic, all subscribed and waiting."""
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(open_raw(port)) for _ in range(count)]
        await trio.testing.wait_all_tasks_blocked()
        assert app.hub.statistics().subscribers == count
        yield clients


@asynccontextmanager
async def one_quiet_subscriber(
    app: TopicApp,
) -> AsyncIterator[tuple[trio.socket.SocketType, RawResponse]]:
    """``app`` on a test server, one raw client streaming it, after a second of quiet."""
    async with (
        open_test_server(app) as server,
        subscribed(app, server.port, 1) as [client],
    ):
        await trio.sleep(1)
        yield client


@pytest.mark.parametrize("options", [{}, {"max_lifetime": 3600.0}])
async def test_paced_events_reach_waiting_streams_without_waking_their_tasks(
    autojump_clock: trio.abc.Clock, options: dict[str, Any]
) -> None:
    app = TopicApp(Hub(), **options)
    with trio.fail_after(SAFETY):
        async with (
            open_test_server(app) as server,
            subscribed(app, server.port, 10) as clients,
        ):
            for i in range(5):
                await trio.sleep(1)  # a paced topic
                async with counting_steps(app.tasks) as counter:
                    await app.hub.publish("t", Event(f"e{i}"))
                # Each stream's socket took the event from the publisher's task.
                assert counter.steps == 0
            for sock, response in clients:
                await events_until(sock, response, 5)
                assert [e.data for e in response.events] == [f"e{i}" for i in range(5)]
            assert [stream.statistics().events for stream in app.streams] == [5] * 10


async def test_a_burst_is_still_gathered_by_the_writer_into_few_writes(
    autojump_clock: trio.abc.Clock,
) -> None:
    app = TopicApp(Hub())
    with trio.fail_after(SAFETY):
        async with one_quiet_subscriber(app) as (sock, response):
            for i in range(100):
                await app.hub.publish("t", Event(str(i)))
            await events_until(sock, response, 100)
            stats = app.streams[0].statistics()
    assert [e.data for e in response.events] == [str(i) for i in range(100)]
    # The first went out at once; the rest, coming fast, in a few large writes
    # (an event per write from the publisher would be 100 writes).
    assert stats.events == 100
    assert stats.writes <= 5


async def test_a_torn_chunk_is_finished_by_the_writer_before_the_next_event(
    autojump_clock: trio.abc.Clock,
) -> None:
    app = TopicApp(Hub())
    with trio.fail_after(SAFETY):
        async with one_quiet_subscriber(app) as (sock, response):
            async with counting_steps(app.tasks) as counter:
                await app.hub.publish("t", Event(payload(0, BIG), id="ignored"))
            # The kernel took part of the chunk from the publisher's task; the
            # stream's own task was woken to send the rest (the client reads later).
            assert counter.steps > 0
            assert app.streams[0].statistics().events == 0  # not whole yet
            # The rest follows at once: no later event is needed to push it out.
            await events_until(sock, response, 1)
            assert app.streams[0].statistics().events == 1
            for i in range(1, 4):
                await trio.sleep(1)
                async with counting_steps(app.tasks) as counter:
                    await app.hub.publish("t", Event(payload(i, 64)))
                assert counter.steps == 0  # waiting again, and written at once again
            await events_until(sock, response, 4)
            assert app.streams[0].statistics().events == 4
    assert [e.data for e in response.events] == [payload(0, BIG)] + [
        payload(i, 64) for i in range(1, 4)
    ]


async def test_torn_writes_keep_one_keepalive_entry_and_the_keepalives_on_time(
    autojump_clock: trio.abc.Clock,
) -> None:
    app = TopicApp(Hub(), keepalive_interval=5.0)
    with trio.fail_after(SAFETY):
        async with one_quiet_subscriber(app) as (sock, response):
            for i in range(3):
                await trio.sleep(1)
                await app.hub.publish("t", Event(payload(i, BIG)))  # torn: read only below
                await events_until(sock, response, i + 1)
            # Each torn write cancelled the stream's wait, which then armed a new
            # scope: still one entry in the sweeper's heap for the stream.
            assert len(_SWEEPER.get()._heap) == 1
            await trio.sleep(5.5)
            assert app.streams[0].statistics().keepalives == 1
    assert [e.data for e in response.events] == [payload(i, BIG) for i in range(3)]


async def test_a_frozen_reader_with_a_torn_chunk_is_closed_and_others_go_on(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trio_stream.sse")
    app = TopicApp(Hub(), send_timeout=5.0)
    with trio.fail_after(SAFETY):
        async with (
            open_test_server(app, send_timeout=None) as server,
            subscribed(app, server.port, 2) as [(frozen_sock, frozen), (sock, healthy)],
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(events_until, sock, healthy, 11)
            await trio.sleep(1)
            await app.hub.publish("t", Event(payload(0, BIG)))
            for i in range(1, 11):
                await trio.sleep(1)  # the frozen stream's send times out meanwhile
                await app.hub.publish("t", Event(payload(i, 64)))
            assert "client not reading" in caplog.text
            assert app.hub.statistics().subscribers == 1
            await frozen.read(frozen_sock)  # bounded: the server closed it
    assert [e.data for e in healthy.events] == [payload(0, BIG)] + [
        payload(i, 64) for i in range(1, 11)
    ]
    assert frozen.outcome == "closed"  # no clean end after a torn chunk
    assert frozen.events == []


@pytest.mark.parametrize("reads", [True, False])
async def test_shutdown_lets_a_torn_chunk_finish_within_the_grace(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture, reads: bool
) -> None:
    caplog.set_level(logging.INFO, logger="trio_stream.sse")
    app = TopicApp(Hub(), send_timeout=30.0)
    go = trio.Event()
    responses: list[RawResponse] = []

    async def reader(*, task_status: trio.TaskStatus[None]) -> None:  # noqa: ASYNC114
        async with open_raw(server.port) as (sock, response):
            responses.append(response)
            task_status.started()
            await go.wait()
            if reads:
                await response.read(sock)
            else:
                await trio.sleep_forever()  # frozen, until the test ends

    with trio.fail_after(SAFETY):
        async with trio.open_nursery() as nursery:
            async with open_test_server(app, send_timeout=None) as server:
                await nursery.start(reader)
                await trio.testing.wait_all_tasks_blocked()
                await trio.sleep(1)
                await app.hub.publish("t", Event(payload(0, BIG)))
                await trio.testing.wait_all_tasks_blocked()
                go.set()
                stopping = trio.current_time()
            # The server stopped once the chunk was done, or after the grace.
            stopped = trio.current_time() - stopping
            nursery.cancel_scope.cancel()
    (response,) = responses
    if reads:
        assert response.outcome == "end"
        assert [e.data for e in response.events] == [payload(0, BIG)]
        assert stopped < SHUTDOWN_SEND_GRACE
    else:
        assert SHUTDOWN_SEND_GRACE <= stopped < 30.0
        assert "did not complete within 30 s" in caplog.text


@pytest.mark.parametrize("reads", [True, False])
async def test_a_torn_chunk_goes_out_before_the_end_of_the_body(
    autojump_clock: trio.abc.Clock, reads: bool
) -> None:
    """Torn, then cancelled (a shutdown) before the writer's task ran: the ending finishes it."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)
        await trio.lowlevel.checkpoint()

    data = payload(0, BIG).encode()
    chunk = b"%x\r\n%b\r\n" % (len(data), data)
    async with open_loopback() as (server, client), trio.open_nursery() as nursery:
        writer = Writer(send, 30.0, None)  # a plain ASGI send: given a direct body below
        writer._direct = DirectBody(server, trio.Lock())
        writer.waiting = True  # as pump sets it while it waits for a batch
        assert writer.writes_at_once
        assert writer.write_nowait(data, trio.current_time(), 1) is None
        assert writer.torn
        assert writer.write_nowait(b"next", trio.current_time(), 1) is False  # never past it
        writer.hurry()
        if reads:
            nursery.start_soon(receive_exactly, client, len(chunk))
        started = trio.current_time()
        ended = await writer.write(b"", more_body=False)
        waited = trio.current_time() - started
    if reads:
        assert ended
        assert sent == [{"type": "http.response.body", "body": b"", "more_body": False}]
        assert (writer.events, writer.torn) == (1, False)
    else:
        assert not ended  # cut after the shutdown's grace, not the 30 s send timeout
        assert waited == pytest.approx(SHUTDOWN_SEND_GRACE)
        assert sent == []  # no end after a torn chunk: the server closes the connection
