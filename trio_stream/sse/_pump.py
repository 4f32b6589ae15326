"""The writer task of one streaming response: batches, coalescing, keepalives, inline writes.

:func:`pump` takes batches from a feed and writes them through a
:class:`Writer`, letting a fast producer fill a batch first
(coalescing) and sending a keepalive comment when the stream is quiet.
:class:`_Batches` is also the sink through which a hub subscription's
publisher writes a paced event itself.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import trio

from ..protocol import Event, encode_comment
from ._feeds import Feed, encode_events
from ._keepalive import KeepaliveWatch
from ._writer import Writer

__all__ = ["coalescing_delay", "pump"]

T = TypeVar("T")

logger = logging.getLogger("trio_stream.sse")

_KEEPALIVE = encode_comment()

# Coalescing bounds. A batch waits for more events only when the producer is
# seen adding to it within _HOT_ROUNDS scheduler rounds (a paced producer's
# event is never held back), and then for at most _COALESCE_DELAY seconds,
# or longer when that is too short for the producer, at the pace just seen,
# to fill the batch, or when the stream's last send took long (_BUSY_FACTOR
# times as long; all at most _COALESCE_MAX_DELAY). Why: with 1,000
# subscribers one scheduler round (one event from a fan-out publisher) takes
# a millisecond or more: a fixed 50 ms ended the waits before the batches
# were full, and that fan-out ran at a quarter of its throughput.
# _COALESCE_ROUNDS bounds the polling of a feed that cannot park.
_HOT_ROUNDS = 2
# A stream that wrote nothing for this long is quiet: its next lone event is
# sent without looking for a fast producer (a producer at under 100 events/s
# gains little from coalescing, and it spares the event a scheduler round or two).
_QUIET = 0.01
_COALESCE_ROUNDS = 32
_COALESCE_DELAY = 0.05
_BUSY_FACTOR = 2.0
_COALESCE_MAX_DELAY = 0.5


def coalescing_delay(last_send: float) -> float:
    """How long a fast producer's batch may wait, given the last send's duration."""
    return min(max(_COALESCE_DELAY, _BUSY_FACTOR * last_send), _COALESCE_MAX_DELAY)


async def _coalesce(
    feed: Feed[T],
    batch: list[T],
    max_batch: int,
    full: Callable[[list[T]], bool],
    delay: float,
) -> list[T]:
    """Let a producer that is outrunning the socket add to ``batch`` before it is sent.

    Each Hypercorn send costs far more than queueing an event (or than a
    scheduler round), so one large write beats many small ones. Tried for
    every batch, even of one event: a fan-out publisher adds one event per
    scheduler round, so a backlog never shows before the writer wakes.

    The producer counts as fast when the queue grows within
    ``_HOT_ROUNDS`` rounds; otherwise the batch goes out at once (a paced
    producer's event is never held back). A fast producer's batch then
    grows until it holds ``max_batch`` items, or half the feed's capacity
    (the other half stays free, so the producer is never stopped by the
    wait), or until ``full(batch)``, or for at most ``delay`` seconds
    (:func:`coalescing_delay`): a burst that ends short of the target
    waits that long.

    A feed with ``wait_backlog(count)`` (a hub subscription) is waited on
    parked: the writer costs no scheduler round per event, which with
    thousands of subscribers is most of the saving. Other feeds are polled
    once per round, for at most ``_COALESCE_ROUNDS`` rounds, while the
    queue keeps growing.
    """
    started = trio.current_time()
    deadline = started + delay
    queued, capacity = feed.backlog()
    first_seen = queued
    target = min(max_batch, max(capacity // 2, 1))
    hot = False
    for _ in range(_HOT_ROUNDS):
        if len(batch) + queued >= target or full(batch):
            break
        await trio.lowlevel.checkpoint()
        grown = feed.backlog()[0]
        hot, queued = grown > queued, grown
        if hot:
            break
    if hot:
        # Long enough for the producer, at the pace just seen, to bring the
        # batch to its target: with a thousand subscribers a round of the
        # scheduler (one event from a fan-out publisher) takes a millisecond
        # or more, so a fixed delay would send many small batches.
        elapsed = trio.current_time() - started
        needed = elapsed * (target - len(batch) - queued) / (queued - first_seen)
        deadline = max(deadline, started + min(needed, _COALESCE_MAX_DELAY))
    # (The rounds of the check may already have used up the delay on a busy
    # server; a cancel scope entered past its deadline costs a cancellation.)
    if hot and len(batch) + queued < target and not full(batch) and trio.current_time() < deadline:
        wait_backlog: Callable[[int], Awaitable[None]] | None = getattr(feed, "wait_backlog", None)
        if wait_backlog is not None:
            with trio.move_on_at(deadline):
                await wait_backlog(target - len(batch))
        else:
            await _poll_backlog(feed, batch, target, full, deadline)
    if feed.backlog()[0] and len(batch) < max_batch:
        batch += await feed.next_batch(max_batch - len(batch))
    return batch  # noqa: ASYNC910  called right after a checkpoint (the receive)


async def _poll_backlog(
    feed: Feed[T], batch: list[T], target: int, full: Callable[[list[T]], bool], deadline: float
) -> None:
    """Yield rounds while the queue keeps growing, up to ``target`` items or ``deadline``."""
    still = 0
    for _ in range(_COALESCE_ROUNDS):
        queued = feed.backlog()[0]
        if len(batch) + queued >= target or full(batch) or trio.current_time() >= deadline:
            break
        await trio.lowlevel.checkpoint()
        still = still + 1 if feed.backlog()[0] <= queued else 0
        if still == 2:
            break
    return  # noqa: ASYNC910  called after the hot check's checkpoint


async def pump(
    feed: Feed[T],
    writer: Writer,
    preamble: bytes,
    max_batch: int,
    encode: Callable[[list[T]], bytes],
    *,
    keepalive_interval: float | None,
    full: Callable[[list[T]], bool],
    written: Callable[[int], None] | None,
) -> None:
    """Write the preamble, then every batch the feed gives, until it ends or a send fails.

    ``encode`` turns a batch into the bytes of one write (a ``TypeError`` from
    it marks the feed failed); ``full(batch)`` stops coalescing early (a
    batch already as large as a write should be); ``written(n)``, if given,
    is told after each write how many items it carried (whether or not it
    went out), so that a feed can free the room they held.

    Coalescing (:func:`_coalesce`): a batch smaller than ``max_batch`` may
    wait for more items from a fast producer, except the stream's first
    batch (time to first event: an answer's first token) and a lone item
    after ``_QUIET`` seconds without a write, which go out at once.

    Keepalives: when nothing was written for ``keepalive_interval`` seconds
    (None: never), a comment goes out. The wait for the next batch runs in a
    cancel scope that the run's keepalive sweeper cancels when the comment is
    due (:class:`KeepaliveWatch`): no task per idle connection, and no cancel
    scope entered per event. A feed's ``next_batch`` takes nothing when
    cancelled.

    Inline writes: a feed with ``set_sink`` (a hub subscription) is given
    :meth:`_Batches.offer`, with which the publisher's task writes a paced
    topic's event itself while this task waits; a chunk it tore is
    finished here, first.
    """
    if not preamble:
        await trio.lowlevel.checkpoint()
    elif not await writer.write(preamble):
        return
    watch = None if keepalive_interval is None else KeepaliveWatch(keepalive_interval, writer)
    batches = _Batches(feed, writer, max_batch, encode, full, written)
    set_sink: Callable[[Callable[[T], bool] | None], None] | None = getattr(feed, "set_sink", None)
    if set_sink is not None and writer.writes_at_once:
        set_sink(batches.offer)
    else:
        set_sink = None
    try:
        while True:
            # One scope for as long as no keepalive is due and no chunk is
            # torn. The sweeper (and batches.offer) cancel it only while the
            # feed is waited on: a batch in hand is never lost to it.
            arrived: list[T] | None = None
            with trio.CancelScope() as idle:
                batches.idle = idle
                if watch is not None:
                    watch.arm(idle)
                while True:
                    writer.waiting = True
                    batch = await feed.next_batch(max_batch)
                    writer.waiting = False
                    if idle.cancel_called:  # due just as the batch came: leave the scope first
                        arrived = batch
                        break
                    if not await batches.write(batch):
                        return
            writer.waiting = False  # also when the wait was cancelled
            if arrived is not None:
                if not await batches.write(arrived):  # finishes a torn chunk first
                    return
            elif writer.torn:
                if not await writer.flush():
                    return
            elif not await writer.write(_KEEPALIVE, keepalive=True):
                return
    finally:
        writer.waiting = False
        if set_sink is not None:
            set_sink(None)
        if watch is not None:
            watch.close()


# The last Event offered inline, its bytes and the time: the Hub offers one
# event to every waiting subscriber in turn, so each after the first skips
# the clock and the encoding. Holding the event keeps its identity from
# being reused.
_last_offered: tuple[object, bytes, float] = (None, b"", 0.0)


class _Batches(Generic[T]):
    """Coalesces, encodes and writes the batches of :func:`pump`.

    Also the sink of a hub subscription (:meth:`offer`): while :func:`pump`
    waits for the next batch (``writer.waiting``), a paced topic's
    published event is written by the publisher's task itself, with no
    task switch for this stream.
    """

    __slots__ = (
        "_clock",
        "_encode",
        "_events",
        "_feed",
        "_first",
        "_full",
        "_max_batch",
        "_writer",
        "_written",
        "idle",
    )

    def __init__(
        self,
        feed: Feed[T],
        writer: Writer,
        max_batch: int,
        encode: Callable[[list[T]], bytes],
        full: Callable[[list[T]], bool],
        written: Callable[[int], None] | None,
    ) -> None:
        self._feed = feed
        self._writer = writer
        self._max_batch = max_batch
        self._encode = encode
        self._full = full
        self._written = written
        # The time to a stream's first event (an answer's first token) is never traded.
        self._first = True
        # Set by pump: the cancel scope of its wait for the next batch.
        self.idle: trio.CancelScope | None = None
        # For offer(), which runs once per event per subscriber in the
        # publisher's task: the clock itself (trio.current_time() looks it
        # up), and whether an item is an Event encoded on its own.
        self._clock = trio.lowlevel.current_clock()
        self._events = encode is encode_events

    def offer(self, item: T) -> bool:
        """Write ``item`` now from the calling (publishing) task, if it can go at once.

        A paced topic's event reaches a waiting writer whose socket takes it
        at once: one ``os.write`` here costs a fraction of waking the
        writer's task (with a hundred subscribers, that wake-up per
        subscriber was most of the time from publish to the last delivery).
        Offered only a paced topic's events (a burst is queued, and the
        writer coalesces it: see :meth:`Subscription.set_sink`); refused
        (False: the item is queued, the writer wakes) unless the writer
        waits with nothing in hand. A chunk the kernel took only part of is
        finished by the writer's task, woken for it. Never raises.
        """
        global _last_offered
        offered = _last_offered
        if item is offered[0] and self._events:
            # The same event, to the next subscriber of one fan-out: its bytes
            # and the time are those of the first (microseconds apart).
            data, now = offered[1], offered[2]
        else:
            now = self._clock.current_time()
            if self._events and isinstance(item, Event):
                data = item.encode()
                _last_offered = (item, data, now)
            else:
                try:
                    data = self._encode([item])
                except TypeError:
                    return False  # the writer's own path reports it
        outcome = self._writer.write_nowait(data, now, 1)
        if outcome is False:
            return False
        self._first = False
        if self._written is not None:
            self._written(1)
        if outcome is None and self.idle is not None:
            # Torn: only the writer's task may finish the chunk, and now.
            self.idle.cancel()
        return True

    async def write(self, batch: list[T]) -> bool:
        """Write ``batch`` (after coalescing); False when the stream is to end."""
        if not batch:
            await trio.lowlevel.checkpoint()
            return False
        writer = self._writer
        # A lone event after a quiet spell goes out at once: nothing suggests
        # a fast producer, and looking for one would cost it scheduler rounds.
        if self._first:
            self._first = False
        elif len(batch) < self._max_batch and (
            len(batch) > 1 or trio.current_time() - writer.last_write < _QUIET
        ):
            delay = coalescing_delay(writer.last_send)
            batch = await _coalesce(self._feed, batch, self._max_batch, self._full, delay)
        try:
            try:
                data = self._encode(batch)
            except TypeError:
                logger.exception("stream source misbehaved; ending the stream")
                self._feed.failed = True
                await trio.lowlevel.checkpoint()
                return False
            return await writer.write(data, events=len(batch))
        finally:
            if self._written is not None:
                self._written(len(batch))
