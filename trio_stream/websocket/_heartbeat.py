"""One heartbeat task per server: a timer heap instead of a sleeping task per connection.

A sleeping task costs every idle connection a few KiB (its frames, its cancel
scope, its deadline); the heap costs one small entry. When a connection's ping
is due the wheel asks it to start one (a short-lived task that exists only
until the pong, usually milliseconds).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import NoReturn

import trio

__all__ = ["HeartbeatWheel", "Slot"]

# Beats handled before the wheel lets other tasks run (thousands may fall due together).
_BATCH = 256


class Slot:
    """A connection's place in the wheel; :meth:`clear` it when the connection ends."""

    __slots__ = ("beat",)

    def __init__(self, beat: Callable[[], None]) -> None:
        self.beat: Callable[[], None] | None = beat

    def clear(self) -> None:
        """Forget the connection (its entry is dropped when it next falls due)."""
        self.beat = None


class HeartbeatWheel:
    """Calls each registered ``beat`` every ``interval`` seconds, from one task.

    Beats are on a fixed schedule from registration (``interval`` from one
    beat to the next, the same cadence as :func:`trio_stream.core.heartbeat`);
    a beat more than an interval late is not repeated, the schedule moves on.
    ``beat`` must not block: it starts the ping and returns.
    """

    def __init__(self, interval: float) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.interval = interval
        self._heap: list[tuple[float, int, Slot]] = []
        self._order = itertools.count()
        self._idle = trio.lowlevel.ParkingLot()

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, beat: Callable[[], None]) -> Slot:
        """Schedule ``beat`` every ``interval``, the first one ``interval`` from now."""
        slot = Slot(beat)
        heapq.heappush(self._heap, (trio.current_time() + self.interval, next(self._order), slot))
        self._idle.unpark_all()
        return slot

    async def run(  # noqa: ASYNC114  started by serve_websockets
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """Run the wheel until cancelled (startable)."""
        heap = self._heap
        task_status.started()
        while True:
            if not heap:
                await self._idle.park()
                continue
            # New entries are due an interval from now: never before the head.
            await trio.sleep_until(heap[0][0])
            now = trio.current_time()
            handled = 0
            while heap and heap[0][0] <= now:
                due, order, slot = heapq.heappop(heap)
                beat = slot.beat
                if beat is None:
                    continue
                beat()
                due += self.interval
                heapq.heappush(heap, (due if due > now else now + self.interval, order, slot))
                handled += 1
                if handled % _BATCH == 0:
                    await trio.lowlevel.checkpoint()
