"""RedisBroker: the multi-instance backplane on Redis Streams (coredis)."""

from __future__ import annotations

import logging
import math
import ssl
from collections.abc import Awaitable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import trio

from ..core import History, LocalFanout
from ..core._groups import collapse_group, reraise
from ..protocol import Backoff, Event
from ._errors import BrokerError, BrokerUnavailableError
from ._redis_ids import parse_event_id
from ._redis_store import RedisStore
from ._redis_tails import TailSet

__all__ = ["RedisBroker", "RedisBrokerStatistics"]

logger = logging.getLogger("trio_stream.brokers")

T = TypeVar("T")

#: Redis keeps at least this many entries per topic whatever ``History.max_events``
#: says: a tail reads up to ``tail_batch`` entries per round trip and must never
#: find the entries it has not read yet trimmed away under a burst.
MIN_RETAINED = 1000


@dataclass(frozen=True, slots=True)
class RedisBrokerStatistics:
    """A snapshot of a :class:`RedisBroker`.

    ``available`` is False during an outage (from the first failure until a
    probe succeeds); ``tails`` topics are tailed by this process for
    ``watchers`` local subscribers; ``published`` events went to Redis and
    ``publish_failures`` did not (each raised); ``delivered`` events came
    from Redis to the local fan-out; ``outages`` counts lost connections.
    """

    available: bool
    tails: int
    watchers: int
    published: int
    publish_failures: int
    delivered: int
    outages: int


def _seconds(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number of seconds > 0")
    return float(value)


def _count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1")
    return value


class RedisBroker:
    """A :class:`Broker` whose topics live in Redis Streams, shared by many processes.

    ``RedisBroker("redis://:password@host:6379/0")``; ``rediss://`` for TLS
    (verified against the system CAs with hostname checks, or against
    ``ssl_context``); ``unix:///path.sock`` for a local socket. Run it with the
    Hub: ``async with open_hub(RedisBroker(url)) as hub:``.

    * Publish: ``XADD`` (``MAXLEN ~``) through one atomic script that also
      keeps the topic's epoch; the returned event carries the id
      ``<epoch>:<ms>-<seq>``. Delivery, including to this process, comes back
      through the tail, so every instance sees one order: Redis's.
    * Subscribe: the first local subscriber of a topic starts its tail, one
      blocking ``XREAD`` connection per topic per process whatever the number
      of subscribers. ``max_tails`` (512) bounds those connections: size it to
      the number of topics one process watches at once (beyond it, a new
      tail waits until another tail's connection is free).
    * Resume: ``XRANGE`` from the client's id, which must still be in the
      stream under the same epoch; otherwise ``recovered`` is False. So an id
      from before a Redis data loss, from another backplane or from a
      :class:`MemoryBroker` is never misread.
    * History: ``History.max_events`` per topic, trimmed approximately (Redis
      frees whole nodes; at least :data:`MIN_RETAINED` are kept so tails never
      miss entries), and ``History.max_age``: older entries are trimmed and an
      idle topic's keys expire.
    * Outage: any Redis failure puts the broker in outage mode: local
      subscribers are ended with :class:`SubscriberDisconnected` (the
      "reconnect" signal: their clients come back with their last id), tails
      stop, ``publish``/``subscribe`` raise :class:`BrokerUnavailableError` at
      once (nothing is silently dropped), and one task probes Redis with
      ``reconnect_backoff`` (default ``Backoff(0.05, 2.0)``) until it answers.

    Timeouts are configuration, not call parameters: ``connect_timeout``,
    ``command_timeout`` (each command; a tail's ``XREAD`` gets ``tail_block``
    on top). ``max_connections`` (16) bounds the multiplexed command
    connections. A tail reads up to ``tail_batch`` (256) entries per ``XREAD``
    and hands them to the Hub in one go, so local subscribers wake once per
    batch; an ``Overflow.BLOCK`` subscriber still slows the tail, but its queue
    may exceed its capacity by up to one batch. ``replay_batch`` (500) is the
    ``XRANGE`` page size of a resume.
    """

    def __init__(
        self,
        url: str,
        history: History | None = None,
        *,
        key_prefix: str = "trio_stream",
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout: float = 5.0,
        command_timeout: float = 5.0,
        tail_block: float = 2.0,
        tail_batch: int = 256,
        replay_batch: int = 500,
        max_connections: int = 16,
        max_tails: int = 512,
        reconnect_backoff: Iterable[float] | None = None,
    ) -> None:
        if not key_prefix or "{" in key_prefix or "}" in key_prefix:
            raise ValueError("key_prefix must be non-empty and contain no braces")
        self._history = history if history is not None else History()
        retained = History(max(self._history.max_events, MIN_RETAINED), self._history.max_age)
        self._store = RedisStore(
            url,
            retained,
            key_prefix=key_prefix,
            ssl_context=ssl_context,
            connect_timeout=_seconds("connect_timeout", connect_timeout),
            command_timeout=_seconds("command_timeout", command_timeout),
            tail_block=_seconds("tail_block", tail_block),
            max_connections=_count("max_connections", max_connections),
            max_tails=_count("max_tails", max_tails),
        )
        self._tails = TailSet(
            self._store, batch=_count("tail_batch", tail_batch), on_failure=self._outage
        )
        self._replay_batch = _count("replay_batch", replay_batch)
        self._backoff: Iterable[float] = (
            reconnect_backoff if reconnect_backoff is not None else Backoff(0.05, 2.0)
        )
        self._fanout: LocalFanout | None = None
        self._nursery: trio.Nursery | None = None  # None before run() and once it stops
        self._running = False
        self._available = False
        self._probing = False
        self._back = trio.Event()
        self._published = 0
        self._publish_failures = 0
        self._outages = 0

    @property
    def history(self) -> History:
        """The retention policy (see the class docstring for Redis's approximations)."""
        return self._history

    @property
    def url(self) -> str:
        """The Redis URL with its password masked (safe to log)."""
        return self._store.url

    @property
    def available(self) -> bool:
        """True while the broker runs and Redis answers (see :meth:`wait_available`)."""
        return self._available

    async def wait_available(self) -> None:
        """Wait until the broker runs and Redis answers (returns at once if it does).

        For readiness endpoints and tests after an outage; cancellable (wrap
        it in ``trio.move_on_after`` to bound it).
        """
        while not self._available:
            await self._back.wait()
        await trio.lowlevel.checkpoint()

    def bind(self, fanout: LocalFanout) -> None:
        """Deliver tailed events to ``fanout`` (the Hub; called once by ``Hub()``)."""
        if self._fanout is not None and self._fanout is not fanout:
            raise RuntimeError("this broker is already bound to another Hub")
        self._fanout = fanout
        self._tails.bind(fanout)

    async def run(  # noqa: ASYNC114, ASYNC910  startable; every path awaits or raises
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Open the Redis clients and run the tails and the recovery probe until cancelled.

        Started by ``Hub.run`` / ``open_hub``. Reports readiness after a first
        ``PING``: if Redis refuses it (wrong password...) it raises
        :class:`BrokerError`; if Redis is unreachable it starts anyway in
        outage mode and keeps probing (Redis may start after the app). On
        cancellation the tails stop and the connections close.
        """
        if self._running:
            raise RuntimeError("this RedisBroker is already running")
        self._running = True
        try:
            async with self._store.open(), trio.open_nursery() as nursery:
                self._nursery = nursery
                self._tails.attach(nursery)
                try:
                    try:
                        await self._store.ping()
                    except BrokerUnavailableError as error:
                        logger.warning("Redis is unavailable at start (%s): probing", error)
                        self._outage(error)
                    else:
                        self._set_available()
                    task_status.started()
                    await trio.sleep_forever()
                finally:
                    # Stopping: the nursery takes no new task from here on, and the
                    # connections close under requests still in flight (a shielded
                    # publish on someone's way out). Those fail with a BrokerError;
                    # that is a shutdown, not an outage to count and probe.
                    self._detach()
        except BaseExceptionGroup as group:
            single = collapse_group(group)
            if single is None:
                raise BrokerError("RedisBroker stopped on several errors") from group
            reraise(single)
        finally:
            self._detach()
            self._running = False

    def _detach(self) -> None:
        """Stop taking work: unavailable, no nursery for tails or the probe."""
        self._available = False
        self._nursery = None
        self._tails.attach(None)

    # -- Broker protocol -----------------------------------------------------

    async def publish(self, topic: str, event: Event) -> Event:
        """``XADD`` the event to ``topic``'s stream; return it with its new id.

        Local subscribers receive it through the tail, like everyone else's.
        Raises :class:`BrokerUnavailableError` when Redis cannot be reached
        (the event was not stored; retrying may store it) and
        :class:`BrokerError` when Redis refuses or the broker is not running.
        Cancelling it may leave the event stored or not, as with any request
        in flight; coredis keeps the connection in step either way.
        """
        try:
            self._check_available()
            stamped = await self._store.append(topic, event)
        except BrokerError as error:
            self._publish_failures += 1
            if isinstance(error, BrokerUnavailableError):
                self._outage(error)
            raise
        self._published += 1
        return stamped

    async def replay(self, topic: str, last_event_id: str) -> list[Event] | None:
        """The events of ``topic`` after ``last_event_id`` (``XRANGE``), oldest first.

        ``None`` when the id is not one of ours, its entry is gone (trimmed,
        expired, lost with Redis's data) or its epoch differs; ``[]`` when it
        is the newest. Raises :class:`BrokerUnavailableError` during an outage.
        """
        start = parse_event_id(last_event_id)
        if start is None:
            await trio.lowlevel.checkpoint()
            return None
        self._check_available()
        events: list[Event] = []
        # Bounded: the stream holds about max_events (plus a node of slack); a
        # longer tail than that means the id is older than the history.
        limit = self._store.history.max_events * 2 + self._replay_batch
        while True:
            found, page = await self._guarded(
                self._store.range_after(topic, start, count=self._replay_batch + 1)
            )
            if not found:
                return None
            events.extend(event for _, event in page)
            if len(events) > limit:
                logger.info("topic %s: replay longer than the history, starting live", topic)
                return None
            if len(page) < self._replay_batch:
                return events
            start = page[-1][0]

    async def watch(self, topic: str) -> None:
        """Count a local subscriber of ``topic``; start its tail if needed and wait for it.

        Returns once the tail is anchored, so every event published afterwards
        is delivered. Raises :class:`BrokerUnavailableError` during an outage;
        if it raises or is cancelled, nothing stays registered.
        """
        self._check_available()
        await self._tails.watch(topic)

    def unwatch(self, topic: str) -> None:
        """Release one :meth:`watch` (the tail stops within ``tail_block`` when unused)."""
        self._tails.unwatch(topic)

    def position(self, event_id: str) -> tuple[int, ...] | None:
        """``(ms, seq)`` of a RedisBroker id (any epoch), else None."""
        parsed = parse_event_id(event_id)
        return None if parsed is None else (parsed.ms, parsed.seq)

    async def head(self, topic: str) -> str | None:
        """The id of ``topic``'s newest event (``XREVRANGE COUNT 1``), None if it has none.

        Resuming from it replays what ``topic`` publishes afterwards: a
        multi-topic SSE stream records it for topics that have sent nothing
        yet, so a reconnect loses none of their events. Raises
        :class:`BrokerUnavailableError` during an outage.
        """
        self._check_available()
        newest = await self._guarded(self._store.newest(topic))
        return None if newest is None else newest.event_id

    def statistics(self) -> RedisBrokerStatistics:
        """Return a :class:`RedisBrokerStatistics` snapshot (no checkpoint)."""
        return RedisBrokerStatistics(
            available=self._available,
            tails=self._tails.running,
            watchers=self._tails.watchers,
            published=self._published,
            publish_failures=self._publish_failures,
            delivered=self._tails.delivered,
            outages=self._outages,
        )

    # -- outages ---------------------------------------------------------------

    def _check_available(self) -> None:
        if self._nursery is None:
            raise BrokerError("RedisBroker is not running: start it with hub.run / open_hub")
        if not self._available:
            raise BrokerUnavailableError(f"Redis at {self.url} is unavailable")

    async def _guarded(self, request: Awaitable[T]) -> T:
        try:
            return await request
        except BrokerUnavailableError as error:
            self._outage(error)
            raise

    def _set_available(self) -> None:
        self._available = True
        self._back.set()

    def _outage(self, error: BrokerError) -> None:
        """Enter outage mode (idempotent): end local subscribers, stop tails, probe."""
        if self._available:
            self._available = False
            self._back = trio.Event()
            self._outages += 1
            logger.warning("%s: ending local subscribers, probing for recovery", error)
        for topic in self._tails.cancel_all(error):
            self._disconnect_local(topic)
        if not self._probing and self._nursery is not None:
            self._probing = True
            self._nursery.start_soon(self._probe)

    def _disconnect_local(self, topic: str) -> None:
        # End the topic's local subscribers with SubscriberDisconnected, the
        # "reconnect and resume" signal.
        assert self._fanout is not None, "tails run only once the broker is bound"
        self._fanout.disconnect_subscribers(topic, "the Redis backplane is unavailable")

    async def _probe(self) -> None:
        # One prober per outage; runs until Redis answers or the broker stops.
        try:
            reset = getattr(self._backoff, "reset", None)
            if callable(reset):
                reset()
            delays: Iterator[float] = iter(self._backoff)
            for delay in delays:
                await trio.sleep(delay)
                try:
                    await self._store.ping()
                except BrokerError as error:
                    logger.debug("Redis at %s still unavailable: %s", self.url, error)
                    continue
                logger.info("Redis at %s is back", self.url)
                self._set_available()
                return
            await trio.lowlevel.checkpoint()  # an empty backoff still makes this a checkpoint
            logger.error("Redis at %s: reconnect_backoff ran out, staying unavailable", self.url)
        finally:
            self._probing = False
