"""The socket writer of one streaming response, and how the response ended.

:class:`Writer` sends body chunks (straight to Hypercorn's connection when
it can, see ``_direct``) with a send timeout and keeps the statistics;
:class:`Ending` records why the response ended. The task that feeds the
writer is ``_pump``; the watchers of disconnects and shutdown are
``_watchers``.
"""

from __future__ import annotations

import logging

import trio

from ._asgi import Send
from ._compress import SyncFlushGzip
from ._direct import DirectBody, direct_body

__all__ = ["SHUTDOWN_SEND_GRACE", "Ending", "Writer"]

logger = logging.getLogger("trio_stream.sse")

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
