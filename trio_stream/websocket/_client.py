"""``open_websocket_client``: a reconnecting WebSocket client on trio-websocket."""

from __future__ import annotations

import functools
import logging
import ssl
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, HandshakeError
from wsproto.utilities import LocalProtocolError

from ..core import BoundedQueue, Overflow, reconnect_loop
from ..core._groups import collapse_group, reraise
from ..protocol import Backoff, CloseCode, should_reconnect
from ._codec import Codec, JsonCodec
from ._dial import Dialer
from ._errors import WebSocketClosed, WebSocketError, WebSocketRejected
from ._link import Link, LinkSettings, Violation
from ._records import ClientStatistics

__all__ = ["ClientSession", "WebSocketClient", "open_websocket_client"]

logger = logging.getLogger("trio_stream.websocket")

_RETRY_STATUSES = frozenset({408, 425, 429})


class ClientSession:
    """One established connection, as the ``on_connect`` hook sees it.

    ``index`` counts connections (0 for the first, then 1, 2 ... after each
    reconnect). :meth:`send` writes directly on this connection, ahead of the
    messages waiting in the outbox: the place for "subscribe" messages that
    must precede the backlog.
    """

    def __init__(self, link: Link, codec: Codec, index: int) -> None:
        self._link = link
        self._codec = codec
        self.index = index

    async def send(self, obj: Any) -> None:
        """Send ``obj`` now on this connection; silently dropped if it just closed.

        Dropping is safe: the hook runs again on the next connection.
        """
        await self._link.send(self._codec.encode(obj))


OnConnect = Callable[[ClientSession], Awaitable[object]]


class WebSocketClient:
    """A WebSocket connection that survives disconnections, from ``open_websocket_client``.

    :meth:`send` queues a message in the *outbox* (``outbox_capacity``), sent
    in order as soon as a connection is up: messages sent while disconnected
    are flushed after the next reconnect, each exactly once, after the
    ``on_connect`` hook ran. A message is taken off the outbox only once the
    socket accepted it; one written to a socket whose peer died before
    reading it is lost, as with any transport without application acks.

    Iterate it for the decoded messages the server sends, across reconnects
    (a queue of ``inbox_capacity``; while nobody reads, reading from the
    socket pauses). Iteration ends when the server closed the connection for
    good with 1000.
    """

    def __init__(
        self,
        dialer: Dialer,
        codec: Codec,
        settings: LinkSettings,
        on_connect: OnConnect | None,
        outbox: BoundedQueue[str | bytes],
        inbox: BoundedQueue[Any],
        redial: Callable[[], Dialer] | None = None,
    ) -> None:
        self._dialer = dialer
        # Builds the dialer for each reconnection (``url`` given as a function).
        self._redial = redial
        self._codec = codec
        self._settings = settings
        self._on_connect = on_connect
        self._outbox = outbox
        self._unsent: deque[str | bytes] = deque()  # taken from the outbox, not yet written
        self._inbox = inbox
        self._link: Link | None = None
        self._up = trio.Event()  # set while connected
        self._down = trio.Event()  # set while not connected
        self._down.set()
        self._flushed = trio.lowlevel.ParkingLot()
        self._finished: WebSocketClosed | None = None
        self._stopping = False
        self._connections = 0
        self._attempts = 0

    # -- public API --------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while a connection is open."""
        return self._link is not None and not self._link.closed.is_set()

    async def wait_connected(self) -> None:
        """Wait until a connection is open (returns at once if one is)."""
        await self._up.wait()
        if self._finished is not None:
            raise self._finished

    async def wait_disconnected(self) -> None:
        """Wait until no connection is open (returns at once if none is).

        After it returns, :meth:`send` queues in the outbox until the next
        connection. Returns too once the client has stopped for good.
        """
        await self._down.wait()

    async def send(self, obj: Any) -> None:
        """Queue ``obj`` (encoded now) for the server; see the class docstring.

        With ``outbox_overflow=Overflow.BLOCK`` (the default) waits while the
        outbox is full; ``DROP_OLDEST``/``DROP_NEWEST`` never wait and count
        what they drop. Raises :class:`WebSocketClosed` once the server ended
        the session for good.
        """
        frame = self._codec.encode(obj)
        if self._finished is not None:
            await trio.lowlevel.checkpoint()
            raise self._finished
        if not await self._outbox.put(frame):
            raise self._finished or WebSocketClosed(CloseCode.NORMAL_CLOSURE)

    def __aiter__(self) -> WebSocketClient:
        return self

    async def __anext__(self) -> Any:
        batch = await self._inbox.get_batch(1)
        if not batch:
            raise StopAsyncIteration
        return batch[0]

    def statistics(self) -> ClientStatistics:
        """Connection count, and the outbox and inbox queues (cheap, no checkpoint)."""
        return ClientStatistics(
            connected=self.connected,
            connections=self._connections,
            unsent=len(self._unsent),
            outbox=self._outbox.statistics(),
            inbox=self._inbox.statistics(),
        )

    # -- one connection ----------------------------------------------------------------

    async def _supervise(  # noqa: ASYNC114, ASYNC128  started() is called by reconnect_loop
        self,
        backoff: Backoff,
        max_attempts: int | None,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        try:
            await reconnect_loop(
                self._session,
                backoff=backoff,
                classify=_retryable,
                max_attempts=max_attempts,
                task_status=task_status,
            )
        except ConnectionRejected as exc:
            logger.warning("client %s: handshake rejected with %d", self._dialer, exc.status_code)
            raise WebSocketRejected(exc.status_code) from exc
        finally:
            if self._finished is None:
                self._finished = WebSocketClosed(CloseCode.ABNORMAL_CLOSURE, "client stopped")
            self._inbox.close()  # iteration drains what arrived, then ends
            self._outbox.close()  # waiting senders wake up and raise
            self._up.set()
            self._down.set()
            self._flushed.unpark_all()

    async def _session(self, status: trio.TaskStatus[None]) -> None:
        link: Link | None = None
        stream: trio.abc.Stream | None = None
        try:
            async with trio.open_nursery() as reader_nursery:
                if self._redial is not None and self._attempts:
                    self._dialer = self._redial()  # the URL of this attempt
                self._attempts += 1
                ws, stream = await self._dialer.connect(reader_nursery)
                link = Link(ws, stream, self._settings, f"client {self._dialer}")
                self._link = link
                status.started()
                self._up.set()
                self._down = trio.Event()
                try:
                    async with trio.open_nursery() as tasks:
                        await self._serve(tasks, link)
                        tasks.cancel_scope.cancel()
                finally:
                    self._link = None
                    self._up = trio.Event()
                    self._down.set()
                # trio-websocket's reader must see the server's close reply (a
                # pending close waits for it) and ends when the server then closes
                # the TCP connection; give it close_timeout to do so.
                reader_nursery.cancel_scope.deadline = (
                    trio.current_time() + self._settings.close_timeout
                )
        except* LocalProtocolError:
            # trio-websocket #184: the server pinged just as we were closing; the
            # reader task died, but our close frame was out: the session is over.
            logger.info("client %s: server pinged while we were closing", self._dialer)
            await trio.lowlevel.checkpoint()
        finally:
            if stream is not None:
                await trio.aclose_forcefully(stream)  # noqa: ASYNC102  closes at once, even cancelled
        assert link is not None  # the error above needs an open connection
        self._after_close(link.close_code or CloseCode.ABNORMAL_CLOSURE, link.close_reason)

    async def _serve(self, nursery: trio.Nursery, link: Link) -> None:
        try:
            nursery.start_soon(link.pump, lambda: self._inbox, self._convert)
            nursery.start_soon(link.heartbeat)
            if self._on_connect is not None:
                await self._on_connect(ClientSession(link, self._codec, self._connections))
            self._connections += 1
            nursery.start_soon(self._writer, link)
            await link.closed.wait()
        finally:
            # Leaving the context (or a failed hook) closes the connection cleanly;
            # Link.close shields itself when cancelled, bounded by close_timeout.
            await link.close(CloseCode.NORMAL_CLOSURE, "client closing")  # noqa: ASYNC102  shields itself

    async def _close(self) -> None:
        self._stopping = True
        if self._link is not None:
            await self._link.close(CloseCode.NORMAL_CLOSURE, "client closing")
        else:
            await trio.lowlevel.checkpoint()

    def _after_close(self, code: int, reason: str) -> None:
        error = WebSocketClosed(code, reason)
        if self._stopping:
            return
        if should_reconnect(code):
            raise error  # retried by the reconnect loop
        if code != CloseCode.NORMAL_CLOSURE:
            logger.warning("client %s: closed with %d; not reconnecting", self._dialer, code)
            raise error
        self._finished = error

    def _convert(self, frame: str | bytes) -> Any:
        try:
            return self._codec.decode(frame)
        except ValueError as exc:
            raise Violation(
                CloseCode.INVALID_FRAME_PAYLOAD_DATA, "invalid message", str(exc)
            ) from None

    async def _writer(self, link: Link) -> None:
        unsent = self._unsent
        while True:
            while unsent:
                if not await link.send(unsent[0]):
                    return  # kept for the next connection
                unsent.popleft()
            if not len(self._outbox):
                self._flushed.unpark_all()
            batch = await self._outbox.get_batch()
            if not batch:
                return
            unsent.extend(batch)

    async def _wait_flushed(self) -> None:
        await trio.lowlevel.checkpoint()
        while (self._unsent or len(self._outbox)) and self._finished is None:
            await self._flushed.park()


def _retryable(error: Exception) -> bool:
    if isinstance(error, ConnectionRejected):
        return error.status_code in _RETRY_STATUSES or error.status_code >= 500
    if isinstance(error, WebSocketClosed):
        return should_reconnect(error.code)
    transient = (OSError, trio.TooSlowError, trio.BrokenResourceError, HandshakeError)
    return isinstance(error, (*transient, ConnectionClosed))


@asynccontextmanager
async def open_websocket_client(
    url: str | Callable[[], str],
    *,
    backoff: Backoff | None = None,
    max_attempts: int | None = 10,
    on_connect: OnConnect | None = None,
    codec: Codec | None = None,
    headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    subprotocols: Sequence[str] = (),
    ssl_context: ssl.SSLContext | None = None,
    heartbeat_interval: float | None = 20.0,
    pong_timeout: float = 20.0,
    connect_timeout: float = 10.0,
    send_timeout: float = 10.0,
    close_timeout: float = 5.0,
    outbox_capacity: int = 256,
    outbox_overflow: Overflow = Overflow.BLOCK,
    inbox_capacity: int = 256,
    max_message_size: int = 2**20,
) -> AsyncIterator[WebSocketClient]:
    """Connect to ``url`` and keep reconnecting; yields a :class:`WebSocketClient`.

    Entering returns once the first connection is up. After a disconnection
    the client reconnects after a ``backoff`` delay (default
    :class:`Backoff()`; reset after each successful connection) when
    :func:`should_reconnect` says the close code allows it, and also after
    network errors, connect timeouts and 408/425/429/5xx handshake answers.
    It stops for good, raising out of the ``async with`` (the body is
    cancelled): :class:`WebSocketRejected` for other handshake statuses,
    :class:`WebSocketClosed` for a close code that says "do not reconnect",
    :class:`RetryBudgetExhausted` after ``max_attempts`` failed attempts in a
    row (``None``: never). A server closing with 1000 ends the session
    quietly: iteration ends, :meth:`WebSocketClient.send` raises.

    ``url`` may be a function returning the URL to use: it is called before
    every connection attempt, so a reconnection can carry the last id seen
    (``?last_event_id=...``) or go to another instance; a URL it returns that
    is not usable raises ``ValueError`` out of the client.

    ``await on_connect(session)`` runs on every connection, before the outbox
    is flushed (resubscribe there with ``session.send``). A ping every
    ``heartbeat_interval`` unanswered within ``pong_timeout`` drops the
    connection (and reconnects). ``headers`` are sent with the handshake
    (``Authorization``, ``Cookie``, ``Origin`` ...). The outbox holds
    ``outbox_capacity`` messages (policy ``outbox_overflow``: ``BLOCK``,
    ``DROP_OLDEST`` or ``DROP_NEWEST``), the inbox ``inbox_capacity``.

    On a normal exit the outbox gets up to ``close_timeout`` to flush, then
    the connection is closed with 1000 (bounded by ``close_timeout``, also
    when cancelled). Errors come out as single exceptions, never groups.
    """
    if outbox_overflow is Overflow.DISCONNECT:
        raise ValueError("outbox_overflow must be BLOCK, DROP_OLDEST or DROP_NEWEST")
    dial = functools.partial(
        Dialer.parse,
        headers=headers,
        subprotocols=subprotocols,
        ssl_context=ssl_context,
        max_message_size=max_message_size,
        connect_timeout=connect_timeout,
    )
    make_url = url if callable(url) else None
    dialer = dial(url() if callable(url) else url)
    client = WebSocketClient(
        dialer,
        codec if codec is not None else JsonCodec(),
        LinkSettings(heartbeat_interval, pong_timeout, send_timeout, close_timeout),
        on_connect,
        BoundedQueue(outbox_capacity, outbox_overflow),
        BoundedQueue(inbox_capacity, Overflow.BLOCK),
        (lambda: dial(make_url())) if make_url is not None else None,
    )
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(
                client._supervise, backoff if backoff is not None else Backoff(), max_attempts
            )
            try:
                yield client
                with trio.move_on_after(close_timeout):
                    await client._wait_flushed()
            finally:
                # Close while trio-websocket's reader still runs (it must read the
                # server's close reply), then stop everything.
                with trio.move_on_after(close_timeout) as scope:
                    scope.shield = True
                    await client._close()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # A WebSocketClosed in the body is the consequence of the supervisor's
        # verdict (RetryBudgetExhausted, WebSocketRejected...): that one is the error.
        single = collapse_group(group, consequence=WebSocketClosed)
        if single is None:
            raise WebSocketError("the WebSocket client failed with several errors") from group
        reraise(single)
