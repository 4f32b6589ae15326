"""The embedded broker: history in memory, synchronous in-process delivery."""

from __future__ import annotations

import math
import re
import secrets
from collections import deque
from dataclasses import dataclass

import trio

from ..protocol import Event
from ._broker import LocalFanout

__all__ = ["BrokerStatistics", "History", "MemoryBroker"]

_EPOCH = re.compile(r"[A-Za-z0-9]{1,16}")
# A position has at most 19 digits: no int() of a huge untrusted string.
_MAX_DIGITS = 19


@dataclass(frozen=True, slots=True)
class History:
    """How much of each topic a broker keeps for resuming clients.

    ``max_events`` (default 1000) bounds memory per topic: a client may fall
    that many events behind and still recover (four times the default queue
    capacity, so a disconnected slow reader has room to catch up).
    ``max_age`` (default 3600 s) bounds how long an event is kept, so idle
    topics are forgotten: a client away for longer gets ``recovered=False``.
    ``max_events=0`` keeps no history (resume only works with the latest id).
    """

    max_events: int = 1000
    max_age: float = 3600.0

    def __post_init__(self) -> None:
        if not isinstance(self.max_events, int) or self.max_events < 0:
            raise ValueError("max_events must be an int >= 0")
        if not (math.isfinite(self.max_age) and self.max_age > 0):
            raise ValueError("max_age must be a finite number of seconds > 0")


@dataclass(frozen=True, slots=True)
class BrokerStatistics:
    """A snapshot of a :class:`MemoryBroker`: topics with history, events retained, published."""

    topics: int
    retained: int
    published: int


class _Log:
    """One topic's retained events and the position below which it forgot."""

    __slots__ = ("entries", "floor")

    def __init__(self, floor: int) -> None:
        # (publish time, position, event), oldest first.
        self.entries: deque[tuple[float, int, Event]] = deque()
        # Every event of the topic after `floor` is still in `entries`.
        self.floor = floor


class MemoryBroker:
    """The embedded :class:`Broker`: ids, history and delivery inside this process.

    Ids look like ``"3f9a0c1e-42"``: the broker's epoch (random per instance,
    or the ``epoch`` argument: 1-16 ASCII letters/digits) and a position
    counter shared by all topics, so ids are strictly increasing per topic
    and unique across them. Ids of another instance are unknown to this one.

    History is bounded per topic by ``history`` (:class:`History`); ages use
    ``trio.current_time()``. Expired topics are forgotten by a sweep that runs
    during :meth:`publish` at most every ``max_age / 2``, so a process with no
    background task still frees memory.

    Delivery to the bound Hub happens synchronously inside :meth:`publish`;
    none of the methods checkpoint (the Hub does), and it needs no
    :meth:`run`.
    """

    def __init__(self, history: History | None = None, *, epoch: str | None = None) -> None:
        if epoch is None:
            epoch = secrets.token_hex(4)
        elif not _EPOCH.fullmatch(epoch):
            raise ValueError("epoch must be 1-16 ASCII letters or digits")
        self._history = history if history is not None else History()
        self._epoch = epoch
        self._prefix = epoch + "-"
        self._position = 0
        self._logs: dict[str, _Log] = {}
        # Highest position forgotten together with a whole topic: resuming a
        # topic that has no log is only safe from here on.
        self._forgotten = 0
        self._next_sweep: float | None = None
        self._fanout: LocalFanout | None = None

    @property
    def epoch(self) -> str:
        """The token every id of this broker starts with."""
        return self._epoch

    @property
    def history(self) -> History:
        """The retention policy."""
        return self._history

    def bind(self, fanout: LocalFanout) -> None:
        """Deliver published events to ``fanout`` (a Hub). One Hub per broker."""
        if self._fanout is not None and self._fanout is not fanout:
            raise RuntimeError("this broker is already bound to another Hub")
        self._fanout = fanout

    async def run(  # noqa: ASYNC114  lead: list in .flake8 startable-in-context-manager
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Nothing to run: reports readiness, then sleeps until cancelled."""
        task_status.started()
        await trio.sleep_forever()

    # The async methods do not checkpoint: the Hub checkpoints around every
    # broker call, and doing it here too would double the scheduling cost of
    # each publish.
    async def publish(self, topic: str, event: Event) -> Event:
        """Stamp ``event`` with the next id, keep it in history, deliver it; no checkpoint."""
        return self._publish(topic, event)  # noqa: ASYNC910  the Hub checkpoints

    def _publish(self, topic: str, event: Event) -> Event:
        now = trio.current_time()
        self._position += 1
        position = self._position
        stamped = event.with_id(self._prefix + str(position))
        try:
            # Subscribers first: a paced event is written to their sockets
            # right here, and the history's bookkeeping can wait until after.
            if self._fanout is not None:
                self._fanout.deliver(topic, stamped)
        finally:
            self._record(topic, stamped, position, now)
        return stamped

    def _record(self, topic: str, stamped: Event, position: int, now: float) -> None:
        log = self._logs.get(topic)
        if log is None:
            log = self._logs[topic] = _Log(self._forgotten)
        max_events = self._history.max_events
        if max_events == 0:
            log.floor = position
        else:
            if len(log.entries) >= max_events:
                log.floor = log.entries.popleft()[1]
            log.entries.append((now, position, stamped))
            self._expire(log, now)
        if self._next_sweep is None:
            self._next_sweep = now + self._history.max_age / 2
        elif now >= self._next_sweep:
            self._sweep(now)

    async def replay(self, topic: str, last_event_id: str) -> list[Event] | None:
        """Events of ``topic`` after ``last_event_id``; None if the gap is not covered."""
        return self._replay(topic, last_event_id)  # noqa: ASYNC910  the Hub checkpoints

    def _replay(self, topic: str, last_event_id: str) -> list[Event] | None:
        position = self.position(last_event_id)
        if position is None or position[0] > self._position:
            return None
        after = position[0]
        log = self._logs.get(topic)
        if log is None:
            return [] if after >= self._forgotten else None
        self._expire(log, trio.current_time())
        if after < log.floor:
            return None
        found: list[Event] = []
        for _, event_position, event in reversed(log.entries):
            if event_position <= after:
                break
            found.append(event)
        found.reverse()
        return found

    async def watch(self, topic: str) -> None:
        """No-op: every publish is delivered in-process; the Hub skips unwatched topics."""

    def unwatch(self, topic: str) -> None:
        """No-op (see :meth:`watch`)."""

    def position(self, event_id: str) -> tuple[int, ...] | None:
        """``(n,)`` for an id ``"<epoch>-<n>"`` of this broker, else None."""
        if not event_id.startswith(self._prefix):
            return None
        digits = event_id[len(self._prefix) :]
        if (
            not 0 < len(digits) <= _MAX_DIGITS
            or not (digits.isascii() and digits.isdigit())
            or (digits[0] == "0" and len(digits) > 1)
        ):
            return None
        return (int(digits),)

    def statistics(self) -> BrokerStatistics:
        """Topics with a history, events retained across them, events published."""
        return BrokerStatistics(
            topics=len(self._logs),
            retained=sum(len(log.entries) for log in self._logs.values()),
            published=self._position,
        )

    def _expire(self, log: _Log, now: float) -> None:
        cutoff = now - self._history.max_age
        entries = log.entries
        while entries and entries[0][0] < cutoff:
            log.floor = entries.popleft()[1]

    def _sweep(self, now: float) -> None:
        for topic, log in list(self._logs.items()):
            self._expire(log, now)
            if not log.entries:
                self._forgotten = max(self._forgotten, log.floor)
                del self._logs[topic]
        self._next_sweep = now + self._history.max_age / 2
