"""The tasks of one streaming response: the socket writer, keepalive and the watchers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar
from weakref import WeakKeyDictionary

import trio

from ..protocol import Event, encode_comment
from ._asgi import Receive, Send
from ._compress import SyncFlushGzip
from ._direct import DirectBody, direct_body
from ._feeds import Feed, encode_events
from ._keepalive import KeepaliveWatch

__all__ = [
    "SHUTDOWN_SEND_GRACE",
    "Ending",
    "Writer",
    "coalescing_delay",
    "pump",
    "unwatch_shutdown",
    "watch_disconnect",
    "watch_shutdown",
]

T = TypeVar("T")

logger = logging.getLogger("trio_stream.sse")

_KEEPALIVE = encode_comment()

SHUTDOWN_SEND_GRACE = 1.0
"""Seconds a half-written body chunk gets to finish once the server shuts down."""


class Ending:
    """Why a response's nursery was cancelled (set by the task that cancelled it)."""

    __slots__ = ("disconnected", "shutdown", "writer")

    def __init__(self, writer: Writer | None = None) -> None:
        self.disconnected = False
        self.shutdown = False
        self.writer = writer  # told to hurry a half-written chunk at shutdown


class Writer:
    """Serialises the body sends of one response and bounds each by ``send_timeout``.

    A send that has not completed within ``send_timeout`` seconds means a
    reader that stopped reading: the writer is then ``broken`` and every later
    write is refused (returns False) so the response ends. A send that raises
    ``OSError`` (some servers do so after a disconnect) breaks it too.

    ``last_send`` is how long the last completed send took (seconds, wall
    clock): with thousands of streams a send spans scheduler rounds that
    run every other stream's send too, so it measures how busy the server
    is (see :func:`pump`'s coalescing).

    One task writes at a time (:func:`pump`, which also sends the keepalives;
    then the response's ending): a second concurrent write raises
    :class:`trio.BusyResourceError`. No lock: one per idle connection costs
    memory for nothing. :meth:`write_nowait` lets another task (a publisher)
    write while that task waits, when the socket takes the bytes at once.
    """

    __slots__ = (
        "_busy",
        "_direct",
        "_gzip",
        "_rest",
        "_rest_scope",
        "_send",
        "_send_timeout",
        "broken",
        "bytes",
        "events",
        "keepalives",
        "last_send",
        "last_write",
        "waiting",
        "writes",
    )

    def __init__(self, send: Send, send_timeout: float, gzip: SyncFlushGzip | None) -> None:
        self._send = send
        self._send_timeout = send_timeout
        self._gzip = gzip
        self._direct = direct_body(send)
        self._rest_scope: trio.CancelScope | None = None
        # The rest of a chunk write_nowait started: (rest, deadline, started, size, events).
        self._rest: tuple[memoryview, float, float, int, int] | None = None
        self._busy = False
        self.broken = False
        self.last_write = trio.current_time()
        self.last_send = 0.0
        self.writes = 0
        self.bytes = 0
        self.events = 0
        self.keepalives = 0
        # True while the writing task waits for its next batch with nothing in
        # hand (set by pump): only then may the keepalive sweeper interrupt
        # it, or write_nowait write.
        self.waiting = False

    @property
    def writes_at_once(self) -> bool:
        """True when :meth:`write_nowait` can write (a direct, uncompressed, plain TCP body)."""
        return self._direct is not None and self._direct.writes_at_once and self._gzip is None

    @property
    def torn(self) -> bool:
        """True while a chunk :meth:`write_nowait` started waits for :meth:`flush`."""
        return self._rest is not None

    async def write(
        self, data: bytes, *, more_body: bool = True, events: int = 0, keepalive: bool = False
    ) -> bool:
        """Send ``data`` (carrying ``events`` events, or a keepalive) as one body message.

        A chunk :meth:`write_nowait` left torn is finished first. Returns
        False when the stream is (now) broken.
        """
        if self._busy:
            raise trio.BusyResourceError("another task is writing this response")
        if self.broken:
            await trio.lowlevel.checkpoint()
            return False
        if self._gzip is not None:
            data = self._gzip.compress(data) if more_body else self._gzip.finish(data)
        # Until the send returns, the stream is in an unknown state (with
        # gzip, the encoder has already consumed the data): an interrupted
        # send leaves it broken.
        self.broken = self._busy = True
        try:
            if self._rest is not None and not await self._send_torn(self._rest):
                return False  # noqa: ASYNC910  _send_torn always awaited a send
            if self._direct is not None and more_body:
                return await self._write_direct(self._direct, data, events, keepalive)
            return await self._write_asgi(data, more_body, events, keepalive)
        finally:
            self._busy = False

    def write_nowait(self, data: bytes, now: float, events: int) -> bool | None:
        """Write ``data`` from another task while the writing task waits; never a checkpoint.

        True: it all went out. None: part of it did; the writing task must
        call :meth:`flush` (any :meth:`write` also does) before anything
        else goes out. False: nothing was written (the writing task is not
        waiting for a batch, a broken or compressed stream, no direct path,
        the kernel took nothing, an error): send it the usual way, where
        errors are handled. ``now`` is the trio time, read once by the caller.
        """
        direct = self._direct
        if not self.waiting or direct is None or self.broken or self._gzip is not None:
            return False
        try:
            rest = direct.write_nowait(data)
        except (trio.WouldBlock, OSError):
            return False
        if rest is not None:
            self._rest = (rest, now + self._send_timeout, now, len(data), events)
            self.waiting = False  # the writing task must finish the chunk first
            return None
        # _sent, inlined (once per event per subscriber in the publisher's task).
        self.last_write = now
        self.last_send = 0.0
        self.writes += 1
        self.bytes += len(data)
        self.events += events
        return True

    async def flush(self) -> bool:
        """Finish a chunk :meth:`write_nowait` left torn; False when the stream is broken."""
        if self._busy:
            raise trio.BusyResourceError("another task is writing this response")
        if self._rest is None or self.broken:
            await trio.lowlevel.checkpoint()
            return not self.broken
        self.broken = self._busy = True
        try:
            return await self._send_torn(self._rest)
        finally:
            self._busy = False

    async def _send_torn(self, torn: tuple[memoryview, float, float, int, int]) -> bool:
        self._rest = None
        rest, deadline, started, size, events = torn
        assert self._direct is not None, "only a direct body is written from another task"
        return await self._send_rest(self._direct, rest, deadline, started, size, events, False)

    async def _write_direct(
        self, direct: DirectBody, data: bytes, events: int, keepalive: bool
    ) -> bool:
        started = trio.current_time()
        try:
            rest = direct.write_now(data)
        except OSError:
            return await self._gone()
        if rest is not None:
            deadline = started + self._send_timeout
            return await self._send_rest(
                direct, rest, deadline, started, len(data), events, keepalive
            )
        # When the kernel took it all there was no checkpoint: pump's wait for
        # the next batch is one, and a cancel scope per write costs more than
        # the write itself.
        return self._sent(started, started, len(data), events, keepalive)  # noqa: ASYNC910

    async def _send_rest(
        self,
        direct: DirectBody,
        rest: memoryview,
        deadline: float,
        started: float,
        size: int,
        events: int,
        keepalive: bool,
    ) -> bool:
        # Shielded: a cancelled response (disconnect, shutdown) never leaves
        # half a chunk on the wire; the deadline still bounds it.
        try:
            with trio.CancelScope(deadline=deadline, shield=True) as scope:
                self._rest_scope = scope
                try:
                    await direct.send_rest(rest)
                finally:
                    self._rest_scope = None
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            return await self._gone()
        if scope.cancelled_caught:
            return self._timed_out()
        return self._sent(started, trio.current_time(), size, events, keepalive)

    async def _write_asgi(
        self, data: bytes, more_body: bool, events: int, keepalive: bool
    ) -> bool:
        started = trio.current_time()
        deadline = started + self._send_timeout
        with trio.move_on_at(deadline):  # noqa: ASYNC912  send is the server's checkpoint
            try:
                await self._send(
                    {"type": "http.response.body", "body": data, "more_body": more_body}
                )
            except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
                return await self._gone()
            # A server may shield its socket writes: a late return is a timeout too.
            finished = trio.current_time()
            if finished <= deadline:
                return self._sent(started, finished, len(data), events, keepalive)
        return self._timed_out()

    async def _gone(self) -> bool:
        logger.debug("SSE send failed: the client is gone")
        await trio.lowlevel.checkpoint()  # the send may have failed before one
        return False

    def _timed_out(self) -> bool:
        logger.warning(
            "SSE send did not complete within %.3g s; closing the stream (client not reading)",
            self._send_timeout,
        )
        return False

    def hurry(self) -> None:
        """Give a half-written chunk at most ``SHUTDOWN_SEND_GRACE`` seconds more.

        Called at the server's shutdown: a chunk is never cut by the
        response's cancellation (see :meth:`write`), but a frozen reader must
        not hold the shutdown for a whole ``send_timeout``.
        """
        latest = trio.current_time() + SHUTDOWN_SEND_GRACE
        scope = self._rest_scope
        if scope is not None:
            scope.deadline = min(scope.deadline, latest)
        if self._rest is not None:
            rest, deadline, started, size, events = self._rest
            self._rest = (rest, min(deadline, latest), started, size, events)

    def _sent(
        self, started: float, finished: float, size: int, events: int, keepalive: bool
    ) -> bool:
        self.last_write = finished
        self.last_send = finished - started
        self.broken = False
        self.writes += 1
        self.bytes += size
        self.events += events
        self.keepalives += keepalive
        return True


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


async def watch_disconnect(
    receive: Receive, cancel_scope: trio.CancelScope, ending: Ending
) -> None:
    """Wait for ``http.disconnect`` and cancel the response at once.

    Hypercorn does not raise on a send after the client went away: this task
    is how a response learns of it. Request body messages are discarded (read
    the body before handing the request to :class:`EventStream`).
    """
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            ending.disconnected = True
            cancel_scope.cancel()
            return


# One watcher task per shutdown event (per ``serve``), not one per response:
# an idle stream then costs a task less. Keyed by event; the trio token tells
# a stale entry left by an earlier ``trio.run`` from a live one.
_on_shutdown: WeakKeyDictionary[
    trio.Event, tuple[trio.lowlevel.TrioToken, dict[trio.CancelScope, Ending]]
] = WeakKeyDictionary()


async def _cancel_on_shutdown(
    shutdown: trio.Event, responses: dict[trio.CancelScope, Ending]
) -> None:
    await shutdown.wait()
    for cancel_scope, ending in list(responses.items()):
        ending.shutdown = True
        cancel_scope.cancel()
        if ending.writer is not None:
            ending.writer.hurry()
    responses.clear()


def watch_shutdown(shutdown: trio.Event, cancel_scope: trio.CancelScope, ending: Ending) -> None:
    """From now on, the server's graceful shutdown ends the response cleanly.

    Sets ``ending.shutdown`` and cancels ``cancel_scope``. All the responses
    of one server share a single (system) task waiting for ``shutdown``.
    Call :func:`unwatch_shutdown` when the response ends.
    """
    token = trio.lowlevel.current_trio_token()
    entry = _on_shutdown.get(shutdown)
    if entry is None or entry[0] is not token:
        entry = _on_shutdown[shutdown] = (token, {})
        trio.lowlevel.spawn_system_task(
            _cancel_on_shutdown, shutdown, entry[1], name="trio_stream shutdown watcher"
        )
    if shutdown.is_set():
        ending.shutdown = True
        cancel_scope.cancel()
    else:
        entry[1][cancel_scope] = ending


def unwatch_shutdown(shutdown: trio.Event, cancel_scope: trio.CancelScope) -> None:
    """Forget a response given to :func:`watch_shutdown` (idempotent)."""
    entry = _on_shutdown.get(shutdown)
    if entry is not None:
        entry[1].pop(cancel_scope, None)
