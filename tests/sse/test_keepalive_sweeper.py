"""Keepalive comments, timed by the run's single sweeper task (KeepaliveWatch)."""

from __future__ import annotations

import gc
import math

import httpx
import pytest
import trio
import trio.testing

from trio_stream.core import Hub
from trio_stream.protocol import Event
from trio_stream.sse import EventStream, Route, Router, sse_response
from trio_stream.sse._asgi import Message, Scope
from trio_stream.sse._feeds import encode_events
from trio_stream.sse._keepalive import KeepaliveWatch
from trio_stream.sse._pump import pump
from trio_stream.sse._writer import Writer
from trio_stream.testing import open_sse_reader, open_test_server

SWEEPER = "trio_stream keepalive sweeper"
REQUEST: Scope = {"type": "http", "method": "GET", "headers": []}
PREAMBLE = b":\n\n"
KEEPALIVE = b":\n"
SAFETY = 10  # seconds: a bound on the real-server test, never a wait for something


class Client:
    """The ASGI side of one in-memory request: each body write, with the time it completed.

    ``slow`` makes the send of a body containing it take that many seconds,
    cancellably: a cancelled send is recorded in ``cancelled``.
    """

    def __init__(self, slow: tuple[bytes, float] | None = None) -> None:
        self.writes: list[tuple[float, bytes]] = []
        self.cancelled: list[bytes] = []
        self.gone = trio.Event()
        self._slow = slow

    async def receive(self) -> Message:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        await trio.lowlevel.checkpoint()
        if message["type"] != "http.response.body":
            return
        body: bytes = message["body"]
        if self._slow is not None and self._slow[0] in body:
            try:
                await trio.sleep(self._slow[1])
            except trio.Cancelled:
                self.cancelled.append(body)
                raise
        self.writes.append((trio.current_time(), body))

    def keepalives(self) -> list[float]:
        return [when for when, body in self.writes if body == KEEPALIVE]

    def events(self) -> list[tuple[float, bytes]]:
        return [(when, body) for when, body in self.writes if b"data:" in body]


def tasks_named(name: str) -> int:
    """How many tasks of the current run have this name (the whole task tree)."""
    count = 0
    root = trio.lowlevel.current_root_task()
    assert root is not None
    todo = [root]
    while todo:  # a finite tree
        task = todo.pop()
        count += task.name == name
        todo += [child for nursery in task.child_nurseries for child in nursery.child_tasks]
    return count


def approx(times: list[float]) -> object:
    return pytest.approx(times, abs=1e-6)


async def test_keepalives_fall_exactly_an_interval_after_each_streams_last_write(
    autojump_clock: trio.abc.Clock,
) -> None:
    hub = Hub()
    clients = {interval: Client() for interval in (10.0, 3.0, 7.5)}
    async with trio.open_nursery() as nursery:

        def start(interval: float) -> None:
            stream = sse_response(hub=hub, topic="t", keepalive_interval=interval)
            nursery.start_soon(stream, REQUEST, clients[interval].receive, clients[interval].send)

        start(10.0)  # t=0: the sweeper sleeps until t=10
        await trio.sleep(2)
        start(3.0)  # due at t=5: the sweeper must wake earlier than it planned
        await trio.sleep(1)
        start(7.5)  # due at t=10.5
        await trio.sleep(12.25 - trio.current_time())
        await hub.publish("t", Event("news"))  # every timer restarts from t=12.25
        await trio.sleep(24 - trio.current_time())
        nursery.cancel_scope.cancel()
    assert clients[10.0].keepalives() == approx([10, 22.25])
    assert clients[3.0].keepalives() == approx([5, 8, 11, 15.25, 18.25, 21.25])
    assert clients[7.5].keepalives() == approx([10.5, 19.75])
    for client in clients.values():
        assert [when for when, _ in client.events()] == approx([12.25])
    assert tasks_named(SWEEPER) == 1


async def test_an_event_due_with_the_keepalive_is_delivered(
    autojump_clock: trio.abc.Clock,
) -> None:
    hub = Hub()
    clients = [Client() for _ in range(20)]  # either order of the two wake-ups is seen
    async with trio.open_nursery() as nursery:
        for client in clients:
            stream = sse_response(hub=hub, topic="t", keepalive_interval=5.0)
            nursery.start_soon(stream, REQUEST, client.receive, client.send)
        await trio.sleep(5)  # just when every stream's keepalive is due
        await hub.publish("t", Event("on time"))
        await trio.sleep(12 - trio.current_time())
        nursery.cancel_scope.cancel()
    for client in clients:
        assert [(when, body.count(b"on time")) for when, body in client.events()] == [(5, 1)]
        # Either a keepalive went out at t=5 with the event, or the event was it;
        # the next one is an interval after the event.
        assert client.keepalives() in (approx([5, 10]), approx([10]))


class LateFeed:
    """A feed whose one item arrives at ``at`` and cannot be cancelled before (shielded).

    It stands for a batch handed over in the scheduler round in which the
    sweeper cancels the wait: the writer then holds a batch and a cancelled scope.
    """

    failed = False
    has_task = False

    def __init__(self, at: float) -> None:
        self._at = at
        self._given = False
        self.cancelled_on_arrival = False

    async def next_batch(self, max_events: int) -> list[Event]:
        if self._given:
            await trio.sleep_forever()
        with trio.CancelScope(shield=True):
            await trio.sleep_until(self._at)
        self._given = True
        # -inf: the wait was cancelled meanwhile; the batch is handed over all the same.
        self.cancelled_on_arrival = trio.current_effective_deadline() == -math.inf
        return [Event("late")]

    async def run(self) -> None:
        await trio.lowlevel.checkpoint()

    def backlog(self) -> tuple[int, int]:
        return 0, 1


async def test_a_batch_arriving_after_the_sweepers_cancel_is_written_not_lost(
    autojump_clock: trio.abc.Clock,
) -> None:
    client = Client()
    writer = Writer(client.send, 30.0, None)
    feed = LateFeed(at=5.5)  # the keepalive is due at 5: the sweeper cancels first
    with trio.move_on_after(20):
        await pump(
            feed,
            writer,
            PREAMBLE,
            16,
            encode_events,
            keepalive_interval=5.0,
            full=lambda batch: False,
            written=lambda count: None,
        )
    # No keepalive at 5 (the batch was on its way), the batch at 5.5, and the
    # next keepalive an interval after it.
    late = b"data: late\n\n"
    assert client.writes == [(0, PREAMBLE), (5.5, late), (10.5, KEEPALIVE), (15.5, KEEPALIVE)]
    assert (writer.events, writer.keepalives, writer.broken) == (1, 2, False)
    assert feed.cancelled_on_arrival


async def test_a_stream_busy_in_a_long_send_is_not_interrupted(
    autojump_clock: trio.abc.Clock,
) -> None:
    hub = Hub()
    client = Client(slow=(b"slow", 20.0))  # four keepalive intervals long
    async with trio.open_nursery() as nursery:
        stream = sse_response(hub=hub, topic="t", keepalive_interval=5.0, send_timeout=60.0)
        nursery.start_soon(stream, REQUEST, client.receive, client.send)
        await trio.sleep(1)
        await hub.publish("t", Event("slow"))
        await trio.sleep(27 - trio.current_time())
        await hub.publish("t", Event("after"))
        await trio.sleep(40 - trio.current_time())
        nursery.cancel_scope.cancel()
    assert client.cancelled == []
    assert [when for when, _ in client.events()] == approx([21, 27])
    assert client.keepalives() == approx([26, 32, 37])
    assert stream.statistics().keepalives == 3


async def test_a_closed_streams_watch_lets_go_of_its_writer(
    autojump_clock: trio.abc.Clock,
) -> None:
    hub = Hub()
    client = Client()
    streams = [sse_response(hub=hub, topic="t", keepalive_interval=100.0)]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(streams[0], REQUEST, client.receive, client.send)
        await trio.sleep(1)
        writers = [streams[0]._writer]
        client.gone.set()  # a disconnect at t=1; the keepalive was due at t=100
    del streams
    gc.collect()
    assert writers[0] is not None
    # Only this list holds the writer now: not the stream, not its watch (whose
    # heap entry stays until t=100).
    assert gc.get_referrers(writers[0]) == [writers]
    # The stale entry comes up at t=100 and is dropped without a write.
    await trio.sleep(150)
    assert client.writes == [(0, PREAMBLE)]
    assert tasks_named(SWEEPER) == 1


async def test_a_watch_cannot_be_armed_once_closed() -> None:
    await trio.lowlevel.checkpoint()
    client = Client()
    watch = KeepaliveWatch(1.0, Writer(client.send, 1.0, None))
    watch.close()
    with pytest.raises(RuntimeError, match="closed"):
        watch.arm(trio.CancelScope())
    assert watch.check(trio.current_time()) is None


async def test_a_thousand_idle_streams_share_one_sweeper(autojump_clock: trio.abc.Clock) -> None:
    hub = Hub()
    clients = [Client() for _ in range(1000)]
    intervals = [5.0 + i % 4 for i in range(1000)]  # 5, 6, 7, 8 s
    async with trio.open_nursery() as nursery:
        for client, interval in zip(clients, intervals, strict=True):
            stream = sse_response(hub=hub, topic="t", keepalive_interval=interval)
            nursery.start_soon(stream, REQUEST, client.receive, client.send)
        await trio.testing.wait_all_tasks_blocked()
        assert tasks_named(SWEEPER) == 1
        await trio.sleep(30.5)
        nursery.cancel_scope.cancel()
    for client, interval in zip(clients, intervals, strict=True):
        expected = [interval * n for n in range(1, int(30.5 // interval) + 1)]
        assert client.keepalives() == approx(expected)
    assert tasks_named(SWEEPER) == 1


async def test_keepalives_on_real_hypercorn_connections() -> None:
    hub = Hub()
    router = Router(
        [
            Route(
                "/fast",
                lambda s, r, w: EventStream.from_hub(hub, "t", keepalive_interval=0.02)(s, r, w),
            ),
            Route("/slow", lambda s, r, w: EventStream.from_hub(hub, "t")(s, r, w)),
        ]
    )
    with trio.fail_after(SAFETY):
        async with (
            open_test_server(router) as server,
            httpx.AsyncClient() as client,
            client.stream("GET", f"{server.url}/fast") as fast,
            client.stream("GET", f"{server.url}/slow") as slow,
            open_sse_reader(fast) as reader,
            open_sse_reader(slow) as other,
        ):
            assert await other.chunk() == PREAMBLE
            for _ in range(1000):  # bounded by fail_after long before
                if reader.comments > 4:
                    break
                await reader.chunk()
            assert tasks_named(SWEEPER) == 1
            await hub.publish("t", Event("still here"))
            assert [e.data for e in await reader.events(1)] == ["still here"]
            assert [e.data for e in await other.events(1)] == ["still here"]
            assert other.comments == 1  # its 15 s keepalive is not due
