"""Where a topic stands now, as an id a later subscription can resume from."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import trio

from ._memory import MemoryBroker

__all__ = ["topic_heads"]


async def topic_heads(broker: object, topics: Sequence[str]) -> list[str | None]:
    """For each topic, an id meaning "everything published to it so far", or None.

    Passing it later as ``last_event_id`` to ``Hub.subscribe`` replays what
    the topic published since, so a stream that has not yet delivered an
    event of a topic can still resume it without a gap.

    * A broker with an ``async head(topic) -> str | None`` method answers
      for itself (the hook for backplanes such as Redis);
    * :class:`MemoryBroker`: ``"<epoch>-<n>"`` with ``n`` the number of
      events published so far. Its position counter is shared by all topics
      and its replay takes any position of its epoch, so this one id stands
      for every topic;
    * any other broker: None (such a topic starts live).

    Always a checkpoint.
    """
    head: Callable[[str], Awaitable[str | None]] | None = getattr(broker, "head", None)
    if head is not None:
        heads = [await head(topic) for topic in topics]
        await trio.lowlevel.checkpoint()
        return heads
    await trio.lowlevel.checkpoint()
    if isinstance(broker, MemoryBroker):
        marker = f"{broker.epoch}-{broker.statistics().published}"
        return [marker] * len(topics)
    return [None] * len(topics)
