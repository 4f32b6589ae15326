"""Hub topics as rooms: ONE Hub subscription and ONE forwarder task per topic, not per peer.

A room's forwarder takes everything its subscription has queued, encodes each
event's frame once, and hands the batch to every member's outbox in one call
(one socket write per member when the socket has room). A member costs a
small record, not a task, a queue and a subscription of its own.

Members keep the per-subscriber guarantees of ``Hub.subscribe``: events
published after ``subscribe`` returned, each once, in order; a resume from
``last_event_id`` replays history first and then continues live with no gap
and no duplicate (live events that arrive during the replay are held, then
delivered after it, those the replay covered skipped by position); and each
member has its own ``capacity`` and overflow policy (see
``WebSocketPeer.subscribe``).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

from ..core import DEFAULT_CAPACITY, Hub, Overflow, SubscriberDisconnected
from ..protocol import CloseCode, Event
from ._frames import EventFrameCache, event_message, wire_frame
from ._outbox import CLOSED, FULL, Tally

if TYPE_CHECKING:
    from ._peer import WebSocketPeer

__all__ = ["ROOM_CAPACITY", "Membership", "Rooms"]

logger = logging.getLogger("trio_stream.websocket")

#: Capacity of a room's own Hub queue (``Overflow.BLOCK``). The forwarder takes
#: everything queued at each step, so the queue only fills while it waits for a
#: ``BLOCK`` member (then the publisher waits too, as it would for that member's
#: own Hub queue) or while the process is short of CPU - slowing the publisher
#: then is better than disconnecting a whole room.
ROOM_CAPACITY = DEFAULT_CAPACITY

# Members served before the forwarder lets other tasks run: the publisher gets
# to publish meanwhile, so that under load the next batch is bigger.
_YIELD_EVERY = 64

Position = Callable[[str], "tuple[int, ...] | None"]


class Membership(Tally):
    """One peer in one room: its policy and where it is in the room's stream."""

    __slots__ = (
        "capacity",
        "first",
        "held",
        "left",
        "overflow",
        "peer",
        "room",
        "seen_through",
        "topic",
    )

    def __init__(self, peer: WebSocketPeer, topic: str, capacity: int, overflow: Overflow) -> None:
        super().__init__()
        self.peer = peer
        self.topic = topic
        self.room: Room | None = None
        self.capacity = capacity
        self.overflow = overflow
        self.first = 0  # the room's count of events taken when this member joined
        self.held: deque[Event] | None = None  # live events arriving during a replay
        self.seen_through: tuple[int, ...] | None = None  # replayed up to here: skip these
        self.left = False

    def active(self) -> bool:
        """True until the member left (a call, so that type checkers re-read it after awaits)."""
        return not self.left

    def leave(self) -> None:
        """Stop receiving the room's events (synchronous, idempotent)."""
        if not self.left:
            self.left = True
            self.held = None
            if self.room is not None:
                self.room.remove(self)

    def fresh(self, event: Event, position: Position) -> bool:
        """False for a live event that the replay already delivered (Hub's rule)."""
        seen = self.seen_through
        if seen is None:
            return True
        key = position(event.id) if event.id is not None else None
        if key is None or key > seen:
            self.seen_through = None  # deliveries come in id order: no more duplicates
            return True
        return False


class Room:
    """One topic's forwarder task and its members."""

    def __init__(self, rooms: Rooms, topic: str) -> None:
        self.rooms = rooms
        self.topic = topic
        self.members: dict[Membership, None] = {}
        self.taken = 0  # events taken from the subscription so far
        self.depth: Callable[[], int] = lambda: 0  # events queued in the subscription now
        self.scope = trio.CancelScope()
        self.ready = trio.Event()
        self.ended = False

    def remove(self, member: Membership) -> None:
        self.members.pop(member, None)
        if not self.members and not self.ended:
            self.ended = True  # a later join starts a new room
            self.rooms._forget(self)
            self.scope.cancel()

    async def run(  # noqa: ASYNC114  started by Rooms.join
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        with self.scope:
            async with self.rooms.hub.subscribe(
                self.topic, capacity=ROOM_CAPACITY, overflow=Overflow.BLOCK
            ) as subscription:
                self.depth = lambda: subscription.statistics().depth
                task_status.started()
                try:
                    while batch := await subscription.receive_batch():
                        await self._fan_out(batch)
                except SubscriberDisconnected:  # only racing publishers get here (see Hub)
                    logger.warning("room %s fell behind its publisher; closing it", self.topic)
                    self._close_members(CloseCode.SLOW_CONSUMER, "too slow; reconnect")
                except Exception:  # a bug, or a codec that cannot encode an event
                    logger.exception("room %s: forwarding failed; closing its members", self.topic)
                    self._close_members(CloseCode.INTERNAL_ERROR, "internal error")
                finally:
                    self._end()

    def _close_members(self, code: int, reason: str) -> None:
        for member in list(self.members):
            member.peer._begin_close(code, reason)

    def _end(self) -> None:
        # The Hub closed (or the room failed): members are simply no longer in it.
        self.ended = True
        self.rooms._forget(self)
        for member in list(self.members):
            member.peer._left(member)
        self.members.clear()

    async def _fan_out(self, batch: list[Event]) -> None:  # noqa: ASYNC910  run() checkpoints
        first = self.taken
        self.taken = first + len(batch)
        # Encoded here, once for all members; not kept in the frame cache
        # (which holds replays): a live event's frame lives as long as its batch.
        encode = self.rooms.frames.codec.encode
        wires = [wire_frame(encode(event_message(event))) for event in batch]
        blob = wires[0] if len(wires) == 1 else b"".join(wires)
        for index, member in enumerate(list(self.members)):
            if index % _YIELD_EVERY == _YIELD_EVERY - 1:
                await trio.lowlevel.checkpoint()
            if member.left:
                continue
            if (
                member.first <= first
                and member.held is None
                and member.seen_through is None
                and member.peer._deliver_batch(wires, blob, member)
            ):
                continue
            await self._deliver_each(member, batch, wires, first)

    async def _deliver_each(  # noqa: ASYNC910  run() checkpoints
        self, member: Membership, batch: list[Event], wires: list[bytes], first: int
    ) -> None:
        # The general path: joined mid-batch, resuming, or a policy applies.
        peer, position = member.peer, self.rooms.position
        for offset, event in enumerate(batch):
            if member.left:
                return  # noqa: ASYNC910  run() checkpoints
            if first + offset < member.first:
                continue
            if member.held is not None:  # filtered when released, once the replay is known
                member.held.append(event)
                if len(member.held) > member.capacity:
                    peer._end_slow_consumer(
                        f"fell {member.capacity} events behind on {self.topic!r} while resuming"
                    )
                continue
            if not member.fresh(event, position):
                continue
            outcome = peer._deliver(wires[offset], member)
            while outcome == FULL:  # Overflow.BLOCK: wait for the socket to take some
                await peer._outbox.wait_for_room()
                if not member.active():
                    return
                outcome = peer._deliver(wires[offset], member)


class Rooms:
    """A server's rooms, by topic: created on the first join, gone with the last member."""

    def __init__(self, hub: Hub, nursery: trio.Nursery, frames: EventFrameCache) -> None:
        self.hub = hub
        self.frames = frames
        self.position: Position = hub.broker.position
        self._nursery = nursery
        self._rooms: dict[str, Room] = {}

    def size(self, topic: str) -> int:
        """Members of ``topic``'s room now."""
        room = self._rooms.get(topic)
        return len(room.members) if room is not None else 0

    def _forget(self, room: Room) -> None:
        if self._rooms.get(room.topic) is room:
            del self._rooms[room.topic]

    async def _open(self, topic: str) -> Room:
        while True:
            room = self._rooms.get(topic)
            if room is None:
                room = self._rooms[topic] = Room(self, topic)
                try:
                    # Errors before the subscription is in place (a closed Hub,
                    # a broker failure) come out of start(), to the subscriber.
                    await self._nursery.start(room.run)
                except BaseException:
                    room.ended = True
                    self._forget(room)
                    raise
                finally:
                    room.ready.set()
                return room
            await room.ready.wait()
            if not room.ended:
                return room

    async def join(self, member: Membership, last_event_id: str | None) -> bool:
        """Add ``member`` to its topic's room; True if it resumes from history (see module)."""
        topic = member.topic
        room = await self._open(topic)
        if member.left:  # the peer closed (or unsubscribed) while the room was opening
            room.remove(member)  # not in it: this only ends a room nobody else joined
            return False
        member.room = room
        # What the subscription already holds was published before this join.
        member.first = room.taken + room.depth()
        room.members[member] = None
        if not member.active():  # the connection ended while the room opened
            room.remove(member)
            return False
        if last_event_id is None:
            return False
        member.held = deque()
        replayed = await self.hub.broker.replay(topic, last_event_id)
        if replayed is None:
            logger.info("topic %s: last event id not in history, starting live", topic)
        else:
            last = replayed[-1].id if replayed else last_event_id
            member.seen_through = self.position(last) if last is not None else None
        for event in replayed or ():
            if not await self._feed(member, event):
                break
        while member.held:  # live events held meanwhile; the forwarder may add more
            event = member.held.popleft()
            if member.fresh(event, self.position) and not await self._feed(member, event):
                break
        member.held = None
        return replayed is not None

    async def _feed(self, member: Membership, event: Event) -> bool:
        # A replayed (or held) event: wait for room whatever the policy - a
        # replay is bounded by the history, and the subscriber asked for it.
        peer, wire = member.peer, self.frames.wire(event)
        while (outcome := peer._feed_now(wire)) == FULL:
            await peer._outbox.wait_for_room()
        await trio.lowlevel.checkpoint()
        return outcome != CLOSED and not member.left
