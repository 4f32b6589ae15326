"""The tasks of one streaming response: the socket writer, keepalive and the watchers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import trio

from ..protocol import encode_comment
from ._asgi import Receive, Send
from ._compress import SyncFlushGzip
from ._feeds import Feed

__all__ = ["Ending", "Writer", "keep_alive", "pump", "watch_disconnect", "watch_shutdown"]

T = TypeVar("T")

logger = logging.getLogger("trio_stream.sse")

_KEEPALIVE = encode_comment()


class Ending:
    """Why a response's nursery was cancelled (set by the task that cancelled it)."""

    __slots__ = ("disconnected", "shutdown")

    def __init__(self) -> None:
        self.disconnected = False
        self.shutdown = False


class Writer:
    """Serialises the body sends of one response and bounds each by ``send_timeout``.

    A send that has not completed within ``send_timeout`` seconds means a
    reader that stopped reading: the writer is then ``broken`` and every later
    write is refused (returns False) so the response ends. A send that raises
    ``OSError`` (some servers do so after a disconnect) breaks it too. The
    lock is fair, so keepalives and events go out in arrival order.
    """

    def __init__(self, send: Send, send_timeout: float, gzip: SyncFlushGzip | None) -> None:
        self._send = send
        self._send_timeout = send_timeout
        self._gzip = gzip
        self._lock = trio.Lock()
        self.broken = False
        self.last_write = trio.current_time()
        self.writes = 0
        self.bytes = 0
        self.events = 0
        self.keepalives = 0

    async def write(
        self, data: bytes, *, more_body: bool = True, events: int = 0, keepalive: bool = False
    ) -> bool:
        """Send ``data`` (carrying ``events`` events, or a keepalive) as one body message.

        Returns False when the stream is (now) broken.
        """
        async with self._lock:
            if self.broken:
                return False
            if self._gzip is not None:
                data = self._gzip.compress(data) if more_body else self._gzip.finish(data)
            # Until the send returns, the stream is in an unknown state (with
            # gzip, the encoder has already consumed the data): an interrupted
            # send leaves it broken.
            self.broken = True
            deadline = trio.current_time() + self._send_timeout
            with trio.move_on_at(deadline):  # noqa: ASYNC912  send is the server's checkpoint
                try:
                    await self._send(
                        {"type": "http.response.body", "body": data, "more_body": more_body}
                    )
                except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
                    logger.debug("SSE send failed: the client is gone")
                    return False
                self.last_write = trio.current_time()
                # A server may shield its socket writes: a late return is a timeout too.
                if self.last_write <= deadline:
                    self.broken = False
                    self.writes += 1
                    self.bytes += len(data)
                    self.events += events
                    self.keepalives += keepalive
                    return True
            logger.warning(
                "SSE send did not complete within %.3g s; closing the stream (client not reading)",
                self._send_timeout,
            )
            return False


# Coalescing bounds: a hot producer gets this many extra scheduler rounds, and
# this much time, to add to a batch; it stops as soon as the producer pauses.
_COALESCE_ROUNDS = 32
_COALESCE_DELAY = 0.005


async def _coalesce(
    feed: Feed[T], batch: list[T], max_batch: int, full: Callable[[list[T]], bool]
) -> list[T]:
    """Let a producer that is outrunning the socket add to ``batch`` before it is sent.

    A backlog (``batch`` already holds several events) means the producer is
    faster than the writes. Each Hypercorn send costs far more than queueing
    an event, so yielding a few scheduler rounds while the queue keeps
    growing turns many small writes into one large one. Stops when the queue
    stopped growing for two rounds (the producer paused: nothing is held
    back), at ``max_batch`` items (or once ``full(batch)``), or after
    ``_COALESCE_ROUNDS`` rounds / ``_COALESCE_DELAY`` seconds.
    """
    deadline = trio.current_time() + _COALESCE_DELAY
    still = 0
    for _ in range(_COALESCE_ROUNDS):
        queued = feed.backlog()[0]
        if len(batch) + queued >= max_batch or trio.current_time() >= deadline:
            break
        if full(batch):
            break
        await trio.lowlevel.checkpoint()
        still = still + 1 if feed.backlog()[0] <= queued else 0
        if still == 2:
            break
    if feed.backlog()[0] and len(batch) < max_batch:
        batch += await feed.next_batch(max_batch - len(batch))
    return batch  # noqa: ASYNC910  called right after a checkpoint (the receive)


async def pump(
    feed: Feed[T],
    writer: Writer,
    preamble: bytes,
    max_batch: int,
    encode: Callable[[list[T]], bytes],
    *,
    full: Callable[[list[T]], bool],
    written: Callable[[int], None],
) -> None:
    """Write the preamble, then every batch the feed gives, until it ends or a send fails.

    ``encode`` turns a batch into the bytes of one write (a ``TypeError`` from
    it marks the feed failed); ``full(batch)`` stops coalescing early (a
    batch already as large as a write should be); ``written(n)`` is told
    after each write how many items it carried (whether or not it went out),
    so that a feed can free the room they held.
    """
    if not preamble:
        await trio.lowlevel.checkpoint()
    elif not await writer.write(preamble):
        return
    while True:
        batch = await feed.next_batch(max_batch)
        if not batch:
            return
        if len(batch) > 1:
            batch = await _coalesce(feed, batch, max_batch, full)
        try:
            try:
                data = encode(batch)
            except TypeError:
                logger.exception("stream source misbehaved; ending the stream")
                feed.failed = True
                return
            sent = await writer.write(data, events=len(batch))
        finally:
            written(len(batch))
        if not sent:
            return


async def keep_alive(writer: Writer, interval: float, cancel_scope: trio.CancelScope) -> None:
    """Send a comment whenever nothing was written for ``interval`` seconds.

    Keeps proxies and load balancers from closing an idle stream. Cancels
    ``cancel_scope`` (the response) when the write fails.
    """
    while True:
        due = writer.last_write + interval
        await trio.sleep_until(due)
        if trio.current_time() >= writer.last_write + interval and not await writer.write(
            _KEEPALIVE, keepalive=True
        ):
            cancel_scope.cancel()
            return


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


async def watch_shutdown(
    shutdown: trio.Event, cancel_scope: trio.CancelScope, ending: Ending
) -> None:
    """Wait for the server's graceful shutdown and end the response cleanly."""
    await shutdown.wait()
    ending.shutdown = True
    cancel_scope.cancel()
