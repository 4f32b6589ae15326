"""The ASGI side shared by every streaming response: one nursery, one writer, the watchers.

:class:`EventStream` (Server-Sent Events) and :class:`StreamingResponse`
(raw bytes, NDJSON, CSV) differ in their headers, their source and how a
stream ends; the request handling, the socket writer, the disconnect and
shutdown watchers and the keepalive are this one implementation.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import trio

from ._asgi import Receive, Scope, Send, handle_lifespan
from ._compress import SyncFlushGzip
from ._feeds import Feed, encode_events
from ._lifetime import DEFAULT_LIFETIME_JITTER, LifetimeFeed, check_lifetime, draw_lifetime
from ._pump import pump
from ._request import RequestRejected, accepts_gzip
from ._serve import current_shutdown_event
from ._watchers import unwatch_shutdown, watch_disconnect, watch_shutdown
from ._writer import Ending, Writer

__all__ = ["ResponseBase", "encode_headers"]

logger = logging.getLogger("trio_stream.sse")


def encode_headers(
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
) -> list[tuple[bytes, bytes]]:
    """Extra response headers as ASGI wants them; CR, LF or NUL raise ``ValueError``."""
    items = headers.items() if isinstance(headers, Mapping) else (headers or ())
    encoded = []
    for name, value in items:
        if any(c in name + value for c in "\r\n\0"):
            raise ValueError("header names and values may not contain CR, LF or NUL")
        encoded.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    return encoded


class ResponseBase:
    """One streaming response as an ASGI app (internal base class).

    Serving a request: lifespan is acknowledged; a request during a server
    shutdown gets 503; :meth:`_open_feed` opens the source for the request
    (it may raise :class:`RequestRejected`); the headers go out; then one
    nursery runs the feed's producer (if it has one: a hub subscription
    needs none), the writer (:func:`pump`, which also sends the keepalives),
    a watcher of ``http.disconnect`` that cancels everything at once, and a
    watcher of the server's shutdown; :meth:`_finish` ends
    the body. HEAD gets the headers only. With ``max_lifetime``, the writer's
    view of the feed ends after the stream's own randomised lifetime (see
    :class:`LifetimeFeed`), so the body ends cleanly between two writes.
    """

    _preamble = b""
    _watch_shutdown = True

    def __init__(
        self,
        *,
        keepalive_interval: float | None,
        send_timeout: float,
        max_batch: int,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
        compress: bool,
        shutdown_event: trio.Event | None,
        max_lifetime: float | None = None,
        lifetime_jitter: float = DEFAULT_LIFETIME_JITTER,
        lifetime_random: random.Random | None = None,
    ) -> None:
        check_lifetime(max_lifetime, lifetime_jitter)
        if keepalive_interval is not None and not keepalive_interval > 0:
            raise ValueError("keepalive_interval must be > 0 (or None for no keepalives)")
        if not send_timeout > 0:
            raise ValueError("send_timeout must be > 0")
        if max_batch < 1:
            raise ValueError("capacity and max_batch must be >= 1")
        self._keepalive_interval = keepalive_interval
        self._send_timeout = send_timeout
        self._max_batch = max_batch
        self._headers = encode_headers(headers)
        self._compress = compress
        self._shutdown_event = shutdown_event
        # One attribute, None in the common case: an open stream's size matters.
        self._lifetime = (
            None if max_lifetime is None else (max_lifetime, lifetime_jitter, lifetime_random)
        )
        self._encode: Callable[[list[Any]], bytes] = encode_events
        self._writer: Writer | None = None
        self._feed: Feed[Any] | None = None
        self._ending: Ending | None = None

    # -- what subclasses provide ---------------------------------------------

    def _open_feed(self, scope: Scope) -> AbstractAsyncContextManager[Feed[Any]]:
        """The source of this request's body; may raise :class:`RequestRejected`."""
        raise NotImplementedError

    def _base_headers(self, gzip: SyncFlushGzip | None) -> list[tuple[bytes, bytes]]:
        """The response's own headers (content type, caching ...)."""
        raise NotImplementedError

    async def _finish(self, feed: Feed[Any], writer: Writer, ending: Ending) -> None:
        """End the body once the tasks are done (the client is still connected)."""
        raise NotImplementedError

    def _batch_full(self, batch: list[Any]) -> bool:
        """True when ``batch`` is already as large as one write should be."""
        return False

    def _written(self, count: int) -> None:
        """Told after each write how many items it carried."""

    # -- the request -----------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request (ASGI ``http``; ``lifespan`` is acknowledged)."""
        if scope["type"] == "lifespan":
            await handle_lifespan(receive, send)
            return
        if scope["type"] != "http":
            logger.warning(
                "a streaming response got a %r scope; only http is served", scope["type"]
            )
            await trio.lowlevel.checkpoint()
            return
        shutdown = self._shutdown_event
        if shutdown is None:
            shutdown = current_shutdown_event()
        # No AsyncExitStack: its deque costs most of a KiB per open stream.
        entered = False
        try:
            if shutdown is not None and shutdown.is_set():
                raise RequestRejected(503, "server shutting down")
            opener = self._open_feed(scope)
            if scope.get("method") == "HEAD":
                await self._start(scope, send)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            async with opener as feed:
                entered = True
                gzip = await self._start(scope, send)
                await self._stream(feed, receive, send, gzip, shutdown)
        except RequestRejected as rejection:
            if entered:
                raise
            await rejection.respond(scope, send)

    async def _start(self, scope: Scope, send: Send) -> SyncFlushGzip | None:
        """Send the response's headers; the gzip encoder of the body, if compressed."""
        gzip = SyncFlushGzip() if self._compress and accepts_gzip(scope) else None
        headers = self._base_headers(gzip)
        if self._compress:
            headers.append((b"vary", b"accept-encoding"))
        if gzip is not None:
            headers.append((b"content-encoding", b"gzip"))
        await send(
            {"type": "http.response.start", "status": 200, "headers": headers + self._headers}
        )
        return gzip

    async def _stream(
        self,
        feed: Feed[Any],
        receive: Receive,
        send: Send,
        gzip: SyncFlushGzip | None,
        shutdown: trio.Event | None,
    ) -> None:
        writer = self._writer = Writer(send, self._send_timeout, gzip)
        self._feed = feed
        try:
            ending = await self._run_tasks(feed, writer, receive, shutdown)
            if not ending.disconnected:
                await self._finish(feed, writer, ending)
        finally:
            self._feed = None

    async def _run_tasks(
        self, feed: Feed[Any], writer: Writer, receive: Receive, shutdown: trio.Event | None
    ) -> Ending:
        ending = self._ending = Ending(writer)
        if not self._watch_shutdown:
            shutdown = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_disconnect, receive, nursery.cancel_scope, ending)
            if getattr(feed, "has_task", True):
                nursery.start_soon(feed.run)
            if shutdown is not None:
                watch_shutdown(shutdown, nursery.cancel_scope, ending)
            pumped = feed
            if self._lifetime is not None:
                lifetime = draw_lifetime(*self._lifetime)
                pumped = LifetimeFeed(feed, trio.current_time() + lifetime)
            try:
                await pump(
                    pumped,
                    writer,
                    self._preamble,
                    self._max_batch,
                    self._encode,
                    keepalive_interval=self._keepalive_interval,
                    full=self._batch_full,
                    # Not told when not listening: once per event per stream.
                    written=None
                    if type(self)._written is ResponseBase._written
                    else self._written,
                )
            finally:
                if shutdown is not None:
                    unwatch_shutdown(shutdown, nursery.cancel_scope)
            nursery.cancel_scope.cancel()
        return ending
