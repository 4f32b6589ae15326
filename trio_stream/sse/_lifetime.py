"""A maximum stream lifetime: end a stream at an event boundary after a randomised time.

Long-lived streams pin a client to one server process: a deploy, a load
balancer that added capacity, or a token that expired keeps waiting for the
connection to end. A stream that ends cleanly after a while (the client
reconnects with ``Last-Event-ID`` and resumes from history, with no gap)
moves clients around. Each stream draws its own lifetime, so that the
clients that connected together (after a restart) do not all reconnect at
the same moment.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import trio

from ._feeds import Feed

__all__ = ["DEFAULT_LIFETIME_JITTER", "LifetimeFeed", "check_lifetime", "draw_lifetime"]

logger = logging.getLogger("trio_stream.sse")

T = TypeVar("T")

DEFAULT_LIFETIME_JITTER = 0.2
"""Streams live between 80 % and 100 % of ``max_lifetime``: spread enough that the
reconnects of clients that connected together are spread over a fifth of it."""

# Shared by every stream that was given no generator of its own; seeded by the OS.
_RANDOM = random.Random()


def check_lifetime(max_lifetime: float | None, jitter: float) -> None:
    """Raise ``ValueError`` unless ``max_lifetime`` is None or finite > 0, and 0 <= jitter < 1."""
    if max_lifetime is not None and not (math.isfinite(max_lifetime) and max_lifetime > 0):
        raise ValueError("max_lifetime must be a finite number of seconds > 0 (or None)")
    if not 0 <= jitter < 1:
        raise ValueError("lifetime_jitter must be >= 0 and < 1")


def draw_lifetime(max_lifetime: float, jitter: float, rng: random.Random | None = None) -> float:
    """One stream's lifetime: uniform in ``[max_lifetime * (1 - jitter), max_lifetime]``.

    ``rng`` (a seeded ``random.Random`` in tests) defaults to a module-wide
    generator.
    """
    generator = rng if rng is not None else _RANDOM
    return max_lifetime * (1.0 - jitter * generator.random())


class LifetimeFeed(Generic[T]):
    """A feed that ends (``[]``) once ``deadline`` (trio time) has passed.

    Wraps the writer's view of a response's feed. The writer asks for the
    next batch only between writes, so the stream ends at an event
    boundary, never mid-event; a wait for events is cancelled at the
    deadline, and a feed's ``next_batch`` takes nothing when cancelled, so
    the events not yet written stay in the topic's history for the
    client's resume. ``backlog`` and ``failed`` are the wrapped feed's;
    the response still runs the wrapped feed's producer task itself.
    """

    __slots__ = ("_deadline", "_feed", "expired", "set_sink", "wait_backlog")

    #: The wrapped feed's parked coalescing wait and sink, when it has them (a
    #: hub subscription): set only then, as the writer looks for them by name.
    wait_backlog: Callable[[int], Awaitable[None]]
    set_sink: Callable[[Callable[[T], bool] | None], None]

    def __init__(self, feed: Feed[T], deadline: float) -> None:
        self._feed = feed
        self._deadline = deadline
        self.expired = False
        wait_backlog = getattr(feed, "wait_backlog", None)
        if wait_backlog is not None:
            self.wait_backlog = wait_backlog
        set_sink = getattr(feed, "set_sink", None)
        if set_sink is not None:
            self.set_sink = set_sink

    @property
    def failed(self) -> bool:
        """The wrapped feed's ``failed`` flag."""
        return self._feed.failed

    @failed.setter
    def failed(self, value: bool) -> None:
        self._feed.failed = value

    async def run(self) -> None:
        """The wrapped feed's producer task (the response runs the wrapped feed's itself)."""
        await self._feed.run()

    def backlog(self) -> tuple[int, int]:
        """The wrapped feed's backlog."""
        return self._feed.backlog()

    async def next_batch(self, max_events: int) -> list[T]:
        """The wrapped feed's next batch, or ``[]`` (the end) once the deadline passed."""
        if trio.current_time() < self._deadline:
            with trio.move_on_at(self._deadline):
                return await self._feed.next_batch(max_events)
        else:
            await trio.lowlevel.checkpoint()
        if not self.expired:
            self.expired = True
            logger.debug("SSE stream reached its maximum lifetime; ending it for a reconnect")
        return []
