"""The ``detach`` policy: answers that outlive their client, generated into a Hub topic."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from ..core import HubClosedError, Overflow, SubscriberDisconnected
from ..protocol import DONE, Event, TrioStreamError
from ._stream import GenerationResult

if TYPE_CHECKING:
    from ..core import Hub

__all__ = ["DetachedGeneration", "DetachedGenerations", "GenerationsBusy"]

logger = logging.getLogger("trio_stream.llm")

# The marker published before an answer's first event: resuming "from the start"
# means resuming after it. Relays never forward it.
_START_MARKER = "trio-stream-answer"
_PUBLISH_GRACE = 1.0


class GenerationsBusy(TrioStreamError):
    """Too many detached answers are running (``max_active``): try again later (503)."""


@dataclass(eq=False)
class DetachedGeneration:
    """One detached answer: its id, its topic, where it starts, and its live result."""

    id: str
    topic: str
    start_id: str
    result: GenerationResult
    label: str = ""
    """What the starter said it is (the relay records the wire format here)."""
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    done: trio.Event = field(default_factory=trio.Event)
    stopped: bool = False


Generate = Callable[[DetachedGeneration, Callable[[Event], Awaitable[object]]], Awaitable[None]]
"""``async def generate(generation, publish)``: produce the answer's events via ``publish``."""


class DetachedGenerations:
    """Runs answers that keep going when their client leaves, so the client can resume.

    Each answer runs as a task in this object's nursery (start it with
    ``await nursery.start(generations.run)``) and publishes its events to the
    Hub topic ``{topic_prefix}{id}``; clients follow that topic and resume
    with the id of the last event they saw, receiving the rest exactly once
    (the Hub's history replays it; history must hold a whole answer —
    ``MemoryBroker``'s default keeps 1000 events per topic). A finished
    answer stays resumable for ``retention`` seconds. :meth:`stop` cancels one
    (the explicit Stop button). At most ``max_active`` answers run at once
    (more raise :class:`GenerationsBusy`), so a flood of abandoned answers
    cannot run up an unbounded bill. Cancelling :meth:`run` stops them all.
    """

    def __init__(
        self,
        hub: Hub,
        *,
        topic_prefix: str = "llm.",
        max_active: int = 64,
        retention: float = 300.0,
        subscriber_capacity: int = 256,
    ) -> None:
        if max_active < 1 or subscriber_capacity < 1 or retention < 0:
            raise ValueError("need max_active >= 1, subscriber_capacity >= 1, retention >= 0")
        self.hub = hub
        self.topic_prefix = topic_prefix
        self.max_active = max_active
        self.retention = retention
        self.subscriber_capacity = subscriber_capacity
        self._generations: dict[str, DetachedGeneration] = {}
        self._nursery: trio.Nursery | None = None

    async def run(  # noqa: ASYNC114  started by the application's nursery.start
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Own the answers' tasks until cancelled (then every running answer is stopped)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None

    @property
    def active(self) -> int:
        """How many answers are running now."""
        return sum(1 for g in self._generations.values() if not g.done.is_set())

    def get(self, id: str) -> DetachedGeneration | None:
        """The answer with this id (running, or finished within ``retention``), or None."""
        return self._generations.get(id)

    def stop(self, id: str) -> bool:
        """Stop answer ``id`` now (it ends with an ``abort``); False if it is not running."""
        generation = self._generations.get(id)
        if generation is None or generation.done.is_set() or generation.stopped:
            return False
        generation.stopped = True
        generation.scope.cancel()
        return True

    async def start(
        self, id: str, result: GenerationResult, generate: Generate, *, label: str = ""
    ) -> DetachedGeneration:
        """Start answer ``id`` (replacing a running one with the same id, which is stopped).

        Publishes the start marker first, so that following from
        ``generation.start_id`` misses nothing. Raises :class:`GenerationsBusy`
        at ``max_active`` and :class:`HubClosedError` if the Hub is closed.
        """
        nursery = self._nursery
        if nursery is None:
            raise RuntimeError("DetachedGenerations.run() is not running")
        previous = self._generations.get(id)
        if previous is not None and not previous.done.is_set():
            self.stop(id)
            await previous.done.wait()
        if self.active >= self.max_active:
            raise GenerationsBusy(f"{self.max_active} answers are already running")
        topic = f"{self.topic_prefix}{id}"
        marker = await self.hub.publish(topic, Event(event=_START_MARKER))
        assert marker.id is not None
        generation = DetachedGeneration(id, topic, marker.id, result, label)
        self._generations[id] = generation
        nursery.start_soon(self._run_one, generation, generate)
        return generation

    async def _run_one(self, generation: DetachedGeneration, generate: Generate) -> None:
        async def publish(event: Event) -> Event:
            return await self.hub.publish(generation.topic, event)

        try:
            with generation.scope:
                await generate(generation, publish)
        except HubClosedError:
            logger.info("answer %s: the hub closed", generation.id)
        finally:
            generation.done.set()
        await trio.sleep(self.retention)  # resumable from history for a while
        if self._generations.get(generation.id) is generation:
            del self._generations[generation.id]

    async def follow(
        self,
        generation: DetachedGeneration,
        last_event_id: str | None,
        emit: Callable[[Event], Awaitable[object]],
    ) -> bool:
        """Send ``generation``'s events after ``last_event_id`` (from its start when None)
        through ``emit`` until its ``[DONE]``.

        Returns False when the events could not all be delivered: the id is not
        in history any more, or this follower was too slow for its queue and
        was disconnected (the client resumes with its last id), or the Hub
        closed. Each event carries its Hub id, the client's resume point.
        """
        after = last_event_id or generation.start_id
        async with self.hub.subscribe(
            generation.topic,
            last_event_id=after,
            capacity=self.subscriber_capacity,
            overflow=Overflow.DISCONNECT,
        ) as subscription:
            if not subscription.recovered:
                logger.info("answer %s: resume point %r not in history", generation.id, after)
                await trio.lowlevel.checkpoint()
                return False
            try:
                async for event in subscription:
                    if event.event == _START_MARKER:  # a newer answer with the same id began
                        return False
                    await emit(event)
                    if event.data == DONE:
                        return True
            except SubscriberDisconnected:
                logger.info("answer %s: follower too slow, disconnected", generation.id)
        return False


async def publish_shielded(
    publish: Callable[[Event], Awaitable[object]], events: list[Event]
) -> None:
    """Publish the closing events even while being cancelled (bounded by a short grace)."""
    with trio.move_on_after(_PUBLISH_GRACE) as scope:
        scope.shield = True
        for event in events:
            await publish(event)
        await trio.lowlevel.checkpoint()
