"""The Broker protocol: what a Hub needs from its event store and backplane.

A broker assigns ids, keeps each topic's bounded history, replays it, and
delivers published events to the Hub's local fan-out. The embedded
:class:`MemoryBroker` does all of it in-process and synchronously; a Redis
Streams broker does it with ``XADD ... MAXLEN`` (publish), ``XRANGE`` (replay)
and one blocking ``XREAD`` task per watched topic (delivery), run by
:meth:`Broker.run`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import trio

from ..protocol import Event

__all__ = ["Broker", "LocalFanout"]


class LocalFanout(Protocol):
    """The receiving end of a broker's deliveries: the :class:`Hub`."""

    def deliver(self, topic: str, event: Event) -> None:
        """Fan ``event`` (already carrying its id) out to local subscribers of ``topic``.

        Synchronous and never blocking. A broker calls it once per event, per
        watched topic, in id order.
        """

    async def wait_for_room(self, topic: str) -> None:
        """Wait until every ``Overflow.BLOCK`` subscriber of ``topic`` has room.

        A broker that delivers from a background task awaits this after each
        delivery so that a blocking subscriber slows the tail, not memory.
        """

    def disconnect_subscribers(self, topic: str, reason: str) -> int:
        """End every local subscriber of ``topic`` with the "reconnect" signal.

        Each one's next receive raises :class:`SubscriberDisconnected` (with
        ``reason`` in its message): its client reconnects with its last event
        id and resumes from history. A broker calls it when it can no longer
        deliver ``topic`` (e.g. its backend went away). Synchronous; returns
        how many subscribers were ended.
        """


class Broker(Protocol):
    """The interface a :class:`Hub` uses to store, replay and distribute events.

    Ids are opaque strings chosen by the broker: valid SSE ids (no CR, LF or
    NUL), strictly increasing per topic, carrying an epoch so that an id from
    another broker (or from before a restart that lost the history) is
    recognised as unknown rather than misread.
    """

    def bind(self, fanout: LocalFanout) -> None:
        """Attach the Hub that local deliveries go to (called once, by ``Hub()``)."""

    async def run(  # noqa: ASYNC114  lead: list in .flake8 startable-in-context-manager
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the broker's background tasks until cancelled (``Hub.run`` starts it).

        Brokers without background work report readiness and sleep.
        """

    async def publish(self, topic: str, event: Event) -> Event:
        """Assign ``event`` its id, store it in ``topic``'s history, return the stamped event.

        Delivery to the local fan-out happens either before this returns (an
        in-process broker) or later from a background task (a backplane).
        """

    async def replay(self, topic: str, last_event_id: str) -> Sequence[Event] | None:
        """The events of ``topic`` published after ``last_event_id``, oldest first.

        ``None`` when the id is malformed, from another epoch, or older than
        the retained history (the gap cannot be filled); ``[]`` when nothing
        was published after it.
        """

    async def watch(self, topic: str) -> None:
        """Register one local subscriber of ``topic`` (reference-counted).

        Once it returns, every event published to ``topic`` afterwards is
        delivered to :meth:`LocalFanout.deliver` until the matching
        :meth:`unwatch`. If it raises or is cancelled, nothing was registered.
        """

    def unwatch(self, topic: str) -> None:
        """Release one :meth:`watch` of ``topic``. Synchronous: it cannot be cancelled."""

    def position(self, event_id: str) -> tuple[int, ...] | None:
        """A sortable key for an id this broker issued, or None for any other string.

        The Hub uses it to drop live events already delivered by a replay.
        """
