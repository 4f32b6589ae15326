"""Property: however publish / subscribe / resume / read / leave interleave, a
subscriber receives its topic's events with no gap and no duplicate, across
resumes, as long as history covers the gap - including when events are
published while an (asynchronous) replay is in progress.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_stream.core import History, Hub, MemoryBroker, SubscriberDisconnected, Subscription
from trio_stream.protocol import Event

CLIENTS = 3
TOPICS = ("a", "b")

Op = tuple[str, int, int, int]

ops_strategy = st.lists(
    st.one_of(
        st.tuples(st.just("publish"), st.integers(0, 1), st.integers(1, 3), st.just(0)),
        # Read up to N events; a client that is not subscribed subscribes
        # first (resuming from its last id if it has one).
        st.tuples(st.just("read"), st.integers(0, CLIENTS - 1), st.integers(1, 5), st.just(0)),
        # Leave (if subscribed) and resume at once, with a replay that yields
        # twice and publishes before and after the history snapshot (the
        # subscriber's queue is already attached).
        st.tuples(
            st.just("reconnect"),
            st.integers(0, CLIENTS - 1),
            st.integers(0, 3),
            st.integers(0, 3),
        ),
        st.tuples(st.just("leave"), st.integers(0, CLIENTS - 1), st.just(0), st.just(0)),
    ),
    max_size=40,
)


class SlowReplayBroker(MemoryBroker):
    """A real MemoryBroker whose replay yields twice and runs ``hook`` around its snapshot."""

    hook: Callable[[str], Awaitable[None]] | None = None

    async def replay(self, topic: str, last_event_id: str) -> list[Event] | None:
        if self.hook is not None:
            await self.hook("before")  # publishes land in the queue AND the replay
        await trio.lowlevel.checkpoint()
        found = await super().replay(topic, last_event_id)
        await trio.lowlevel.checkpoint()
        if self.hook is not None:
            await self.hook("after")  # publishes land in the queue only
        return found


@dataclass
class Client:
    topic: str
    stack: AsyncExitStack | None = None
    sub: Subscription | None = None
    last_id: str | None = None
    expected_next: int = 0  # index in the topic's publish order of the next event due


@dataclass
class World:
    hub: Hub
    broker: SlowReplayBroker
    capacity: int
    history: int
    published: dict[str, list[Event]] = field(default_factory=lambda: {t: [] for t in TOPICS})
    index: dict[str, int] = field(default_factory=dict)

    async def publish(self, topic: str, count: int) -> None:
        await trio.lowlevel.checkpoint()
        for _ in range(count):
            events = self.published[topic]
            event = await self.hub.publish(topic, Event(str(len(events))))
            assert event.id is not None
            self.index[event.id] = len(events)
            events.append(event)

    async def subscribe(self, client: Client, before: int, after: int) -> None:
        published = self.published[client.topic]
        attached_at = len(published)
        snapshot_at = attached_at

        async def hook(phase: str) -> None:
            nonlocal snapshot_at
            await self.publish(client.topic, before if phase == "before" else after)
            if phase == "before":
                snapshot_at = len(published)

        self.broker.hook = hook
        client.stack = AsyncExitStack()
        client.sub = await client.stack.enter_async_context(
            self.hub.subscribe(client.topic, last_event_id=client.last_id, capacity=self.capacity)
        )
        self.broker.hook = None
        if client.last_id is None:
            assert not client.sub.recovered
            client.expected_next = attached_at
            return
        last = self.index[client.last_id]
        covered = snapshot_at - last - 1 <= self.history
        assert client.sub.recovered == covered
        client.expected_next = last + 1 if covered else attached_at

    async def read(self, client: Client, max_events: int) -> bool:
        """Read what is available; False once there was nothing (or it ended)."""
        assert client.sub is not None
        batch: list[Event] = []
        with trio.move_on_after(1):
            try:
                batch = await client.sub.receive_batch(max_events)
            except SubscriberDisconnected:
                await self.leave(client)
                return False
        if not batch:
            # Nothing available although the queue is open: it must be caught up.
            assert client.expected_next == len(self.published[client.topic])
            return False
        for event in batch:
            assert event.id is not None
            assert self.index[event.id] == client.expected_next, "gap or duplicate"
            client.expected_next += 1
            client.last_id = event.id
        assert client.sub.last_event_id == client.last_id
        return True

    async def leave(self, client: Client) -> None:
        assert client.stack is not None
        await client.stack.aclose()
        client.stack = client.sub = None


async def scenario(ops: list[Op], capacity: int, history: int) -> None:
    await trio.lowlevel.checkpoint()
    broker = SlowReplayBroker(History(max_events=history))
    world = World(Hub(broker), broker, capacity, history)
    clients = [Client(TOPICS[n % len(TOPICS)]) for n in range(CLIENTS)]
    for kind, a, b, c in ops:
        if kind == "publish":
            await world.publish(TOPICS[a], b)
            continue
        client = clients[a]
        if kind == "read":
            if client.sub is None:
                await world.subscribe(client, 0, 0)
            await world.read(client, b)
        elif kind == "reconnect":
            if client.sub is not None:
                await world.leave(client)
            await world.subscribe(client, b, c)
        elif client.sub is not None:
            await world.leave(client)
    for client in clients:
        while client.sub is not None and await world.read(client, 5):
            pass
        if client.sub is not None:
            await world.leave(client)
    stats = world.hub.statistics()
    assert (stats.subscribers, stats.topics) == (0, 0)


@settings(max_examples=300, deadline=None)
@given(
    ops=ops_strategy,
    capacity=st.integers(1, 6),
    history=st.sampled_from([1, 3, 1000]),
)
def test_no_gap_no_duplicate_across_resumes(ops: list[Op], capacity: int, history: int) -> None:
    trio.run(scenario, ops, capacity, history, clock=trio.testing.MockClock(autojump_threshold=0))


def test_a_known_tricky_sequence() -> None:
    # Freeze, overflow, then resume while publishes land before and after the snapshot.
    ops: list[Op] = [
        ("reconnect", 0, 0, 0),
        ("publish", 0, 2, 0),
        ("read", 0, 1, 0),
        ("publish", 0, 3, 0),  # 4 queued > capacity 3: disconnected
        ("read", 0, 5, 0),
        ("reconnect", 0, 2, 1),  # 2 publishes in queue AND replay, 1 in queue only
        ("read", 0, 5, 0),
        ("read", 0, 5, 0),
    ]
    trio.run(scenario, ops, 3, 1000, clock=trio.testing.MockClock(autojump_threshold=0))
