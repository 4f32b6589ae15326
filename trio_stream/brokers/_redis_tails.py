"""Per-topic tails: one blocking ``XREAD`` loop per watched topic, fanned out locally.

A tail is created by the first local subscriber of a topic, anchors itself at
the stream's newest entry, then reads everything added after it and hands each
event to the Hub (``LocalFanout.deliver``), which fans it out to all local
subscribers: one Redis connection per topic per process, not per subscriber.
It stops on its own once the topic has had no watcher for one ``XREAD``
block, so a topic that flaps between zero and one subscriber does not churn
connections.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from ..core import HubClosedError, LocalFanout
from ._errors import BrokerError, BrokerUnavailableError
from ._redis_store import RedisStore

__all__ = ["Tail", "TailSet"]

logger = logging.getLogger("trio_stream.brokers")


class Tail:
    """One generation of a topic's tail (a new one replaces it after a failure)."""

    __slots__ = ("delivered", "done", "error", "finished", "ready", "scope", "stream_id", "topic")

    def __init__(self, topic: str) -> None:
        self.topic = topic
        # Set once the tail is anchored (or failed trying): watchers wait on it.
        self.ready = trio.Event()
        self.error: BrokerError | None = None
        self.finished = False
        # Set when the tail has stopped for good (idle, failed or cancelled).
        self.done = trio.Event()
        self.stream_id = "0-0"
        self.scope = trio.CancelScope()
        self.delivered = 0


class TailSet:
    """The tails of one :class:`RedisBroker`, with per-topic watcher counts.

    ``on_failure`` is called (synchronously) with the error when a tail loses
    Redis; the broker then ends local subscribers and probes for recovery.
    """

    def __init__(
        self,
        store: RedisStore,
        *,
        batch: int,
        on_failure: Callable[[BrokerError], None],
    ) -> None:
        self._store = store
        self._batch = batch
        self._on_failure = on_failure
        self._fanout: LocalFanout | None = None
        self._nursery: trio.Nursery | None = None
        self._tails: dict[str, Tail] = {}
        # Watchers per topic across tail generations: subscribers of a failed
        # tail still count until they leave, and must not leak into the next.
        self._watchers: dict[str, int] = {}
        self.delivered = 0

    def bind(self, fanout: LocalFanout) -> None:
        self._fanout = fanout

    def attach(self, nursery: trio.Nursery | None) -> None:
        """Run tails in ``nursery`` (the broker's), or detach on shutdown (``None``)."""
        self._nursery = nursery

    @property
    def running(self) -> int:
        """Number of tails running (topics watched by this process)."""
        return len(self._tails)

    @property
    def watchers(self) -> int:
        """Number of local watches (subscribers) across all topics."""
        return sum(self._watchers.values())

    async def watch(self, topic: str) -> None:
        """Count one watcher of ``topic``; return once its tail is anchored.

        If it raises or is cancelled, the count is undone. Raises
        :class:`BrokerUnavailableError` if the tail could not anchor.
        """
        assert self._nursery is not None, "the broker checks that it runs before watching"
        tail = self._tails.get(topic)
        if tail is None:
            tail = self._tails[topic] = Tail(topic)
            self._nursery.start_soon(self._run, tail)
        self._watchers[topic] = self._watchers.get(topic, 0) + 1
        try:
            await tail.ready.wait()
            if tail.error is not None:
                # A fresh exception per watcher: several tasks may be raising it.
                raise type(tail.error)(str(tail.error)) from tail.error
        except BaseException:
            self.unwatch(topic)
            raise

    def unwatch(self, topic: str) -> None:
        """Release one watcher; the tail stops after its current ``XREAD`` if none is left."""
        count = self._watchers.get(topic, 0) - 1
        if count > 0:
            self._watchers[topic] = count
        else:
            self._watchers.pop(topic, None)

    def cancel_all(self, error: BrokerError) -> list[str]:
        """Stop every tail at once (Redis is gone); return the topics with local watchers.

        Watchers still waiting for an anchor get ``error``.
        """
        topics = list(self._watchers)
        for tail in list(self._tails.values()):
            self._finish(tail, error)
            tail.scope.cancel()
        self._tails.clear()
        return topics

    def _finish(self, tail: Tail, error: BrokerError | None) -> None:
        if not tail.finished:
            tail.finished = True
            if not tail.ready.is_set():
                tail.error = error or BrokerUnavailableError("the tail stopped before anchoring")
                tail.ready.set()
            tail.done.set()
        if self._tails.get(tail.topic) is tail:
            del self._tails[tail.topic]

    async def _run(self, tail: Tail) -> None:  # noqa: ASYNC910  _follow awaits Redis first
        with tail.scope:
            try:
                await self._follow(tail)
            except HubClosedError:
                pass  # the Hub is shutting down: nobody is left to deliver to
            except BrokerError as error:
                if not tail.finished:
                    logger.info("tail of topic %s stopped: %s", tail.topic, error)
                    self._finish(tail, error)
                    self._on_failure(error)
            finally:
                self._finish(tail, None)

    async def _follow(self, tail: Tail) -> None:
        store, fanout, topic = self._store, self._fanout, tail.topic
        assert fanout is not None, "bind() is called by Hub() before any watch"
        tail.stream_id = await store.last_stream_id(topic)
        tail.ready.set()
        # One XREAD per round; the check after it is synchronous with the
        # removal from the registry, so a late watcher either sees this tail
        # still registered (and is served by it) or starts a new one.
        while self._watchers.get(topic, 0) > 0:
            tail.stream_id, entries = await store.read_after(
                topic, tail.stream_id, count=self._batch
            )
            for _, event in entries:
                fanout.deliver(topic, event)
            tail.delivered += len(entries)
            self.delivered += len(entries)
            # Once per XREAD batch, not per event: a checkpoint per event would
            # wake every local subscriber once per event instead of once per
            # batch. A BLOCK subscriber still slows the tail; its queue may
            # exceed its capacity by at most one batch (``tail_batch``).
            await fanout.wait_for_room(topic)
