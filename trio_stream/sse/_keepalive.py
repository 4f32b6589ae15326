"""When each stream's keepalive comment is due, kept by one task per run.

A stream's writer waits for its next batch; after ``keepalive_interval``
seconds without a write it must send a comment instead. Bounding every wait
with its own cancel scope works, but entering and leaving a scope with a
deadline for every event was a third of the server's CPU per delivery with
a hundred subscribers of a paced topic (``python -m benchmarks --scenarios
B``). Instead each stream keeps one cancel scope without a deadline for as
long as no keepalive is due, and a single sweeper task per run, sleeping
until the earliest due time, cancels the scope of a stream that is due and
waiting. A stream that writes is never interrupted: it only moves its due
time, which the sweeper reads when it gets there. A stream that ends
leaves a small entry (no reference to its writer) in the heap until its due
time: at most one per stream opened within the last keepalive interval.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Protocol

import trio

__all__ = ["KeepaliveWatch"]

# A cancel scope's "no deadline", read from trio rather than written here.
_NO_DEADLINE = trio.CancelScope().deadline
_CHECK_AGAIN = 0.25  # of the interval: when a due stream was busy writing


class _Writes(Protocol):
    last_write: float
    waiting: bool


class KeepaliveWatch:
    """The keepalive state of one stream, registered with the run's sweeper.

    The stream's writer says when the stream waits for its next batch
    (``writer.waiting``, set by the stream around that wait and nothing
    else). :meth:`arm` gives the watch the cancel scope that wait
    runs in; the sweeper cancels it when ``writer.last_write + interval``
    has passed while the stream waits. After that the stream arms a new
    scope; it also does after something else cancelled the scope (a torn
    inline write), and then the watch's entry stays in the heap as it is.
    :meth:`close` forgets the stream.
    """

    __slots__ = ("_interval", "_scope", "_writer")

    def __init__(self, interval: float, writer: _Writes) -> None:
        self._interval = interval
        self._writer: _Writes | None = writer
        self._scope: trio.CancelScope | None = None

    def arm(self, scope: trio.CancelScope) -> None:
        """Watch ``scope`` from now on (the keepalive is due an interval after the last write)."""
        if self._writer is None:
            raise RuntimeError("the watch was closed")
        # A watch with a scope has its entry in the heap (check() drops the
        # entry when it cancels): one entry per stream, never more.
        queued = self._scope is not None
        self._scope = scope
        if not queued:
            _sweeper().watch(self, self._writer.last_write + self._interval)

    def close(self) -> None:
        """Forget the stream (its heap entry is dropped when it comes up)."""
        self._writer = None  # a closed stream's objects are not kept until then
        self._scope = None

    def check(self, now: float) -> float | None:
        """The next time to look at this stream, or None to drop its entry.

        Cancels the scope of a stream that is due and waiting.
        """
        if self._writer is None or self._scope is None:
            return None
        due = self._writer.last_write + self._interval
        if due > now:
            return due
        if self._writer.waiting:
            self._scope.cancel()
            self._scope = None  # the stream arms a new scope after its keepalive
            return None
        # Busy writing (a slow client): it is not idle; look again later.
        return now + _CHECK_AGAIN * self._interval


class _Sweeper:
    """A heap of (due time, watch); one system task sleeps until the earliest."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, KeepaliveWatch]] = []
        self._order = itertools.count()  # ties: never compare two watches
        self._sleep = trio.CancelScope()

    def watch(self, watch: KeepaliveWatch, due: float) -> None:
        heapq.heappush(self._heap, (due, next(self._order), watch))
        if due < self._sleep.deadline:
            self._sleep.deadline = due

    async def run(self) -> None:
        while True:
            now = trio.current_time()
            heap = self._heap
            while heap and heap[0][0] <= now:
                _, _, watch = heapq.heappop(heap)
                due = watch.check(now)
                if due is not None:
                    heapq.heappush(heap, (due, next(self._order), watch))
            with trio.CancelScope(deadline=heap[0][0] if heap else _NO_DEADLINE) as sleep:
                self._sleep = sleep
                await trio.sleep_forever()


_SWEEPER: trio.lowlevel.RunVar[_Sweeper] = trio.lowlevel.RunVar("trio_stream_keepalives")


def _sweeper() -> _Sweeper:
    try:
        return _SWEEPER.get()
    except LookupError:
        sweeper = _Sweeper()
        _SWEEPER.set(sweeper)
        trio.lowlevel.spawn_system_task(sweeper.run, name="trio_stream keepalive sweeper")
        return sweeper
