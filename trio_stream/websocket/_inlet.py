"""Incoming messages without a pump task: trio-websocket's reader queues them itself.

trio-websocket's reader task puts each complete message in a memory channel,
which another task must drain with ``get_message()``: a task per connection
that mostly waits, a few KiB each at thousands of idle connections. The server
opens its connections with an :class:`Inlet` in that channel's place (both of
its ends), so the reader converts, checks and queues each message itself, with
the same backpressure: a full inbox blocks the reader (TCP backpressure to the
client) and suspends the heartbeat's pong deadline meanwhile.

This reaches into trio-websocket's internals (the channel attributes, the
reader task, the request future: :func:`open_server_connection` does what its
``wrap_server_stream`` does). :func:`inline_supported` checks them once; where
they differ the server falls back to ``wrap_server_stream`` and a pump task
(:meth:`Link.pump`), which costs memory, not correctness.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

import trio
from trio_websocket import WebSocketConnection, WebSocketRequest, wrap_server_stream
from wsproto import ConnectionType, WSConnection

from ..core import BoundedQueue
from ..protocol import CloseCode
from ._link import Link

__all__ = ["Inlet", "inline_supported", "open_server_connection"]

_CHANNELS = ("_send_channel", "_recv_channel")
_METHODS = ("_reader_task", "_get_request")


@functools.cache
def inline_supported() -> bool:
    """True when this trio-websocket has the internals :class:`Inlet` replaces."""
    if not all(callable(getattr(WebSocketConnection, name, None)) for name in _METHODS):
        return False
    probe = WebSocketConnection(None, WSConnection(ConnectionType.SERVER))  # type: ignore[arg-type]
    return all(hasattr(probe, name) for name in _CHANNELS)


class Inlet:
    """Stands in for both ends of trio-websocket's message channel on one server connection.

    trio-websocket calls ``send(message)`` from its reader for every message,
    and ``aclose()`` - or leaves ``async with`` - when the WebSocket ends;
    :meth:`bind` says where messages go. The first end notes the close code
    on the link, sets ``link.closed`` and calls ``on_end``.
    """

    __slots__ = ("_convert", "_ended", "_inbox", "_link", "_nursery", "_on_end", "_refusing")

    def __init__(self) -> None:
        self._link: Link | None = None
        self._inbox: Callable[[], BoundedQueue[Any]] | None = None
        self._convert: Callable[[str | bytes], Any] | None = None
        self._nursery: trio.Nursery | None = None
        self._on_end: Callable[[], None] | None = None
        self._ended = False
        self._refusing = False  # a message was refused: the close is under way

    def bind(
        self,
        link: Link,
        inbox: Callable[[], BoundedQueue[Any]],
        convert: Callable[[str | bytes], Any],
        nursery: trio.Nursery,
        on_end: Callable[[], None],
    ) -> None:
        """Deliver messages through ``link`` (before the handshake is accepted).

        If the WebSocket already ended (the client left during the handshake),
        the end is reported now.
        """
        self._link, self._inbox, self._convert = link, inbox, convert
        self._nursery, self._on_end = nursery, on_end
        if self._ended:
            self._ended = False
            self.end()

    async def send(self, message: str | bytes) -> None:
        """Called by trio-websocket's reader for each message: convert and queue it."""
        link, inbox, convert = self._link, self._inbox, self._convert
        if self._ended or self._refusing or link is None or inbox is None or convert is None:
            await trio.lowlevel.checkpoint()  # nothing is accepted yet, or the close is under way
            return
        violation = await link.receive_frame(message, inbox, convert)
        if violation is not None and self._nursery is not None:
            self._refusing = True
            # The reader cannot await the closing handshake: it must read the reply.
            with contextlib.suppress(RuntimeError):  # the connection is torn down already
                self._nursery.start_soon(link.close, violation.code, violation.reason)

    async def receive(self) -> str | bytes:
        """``get_message()`` has nothing to read: messages go to the peer's inbox."""
        await trio.lowlevel.checkpoint()
        raise trio.EndOfChannel

    def end(self) -> None:
        """The WebSocket is over: note its close code, set ``link.closed``, call ``on_end``."""
        if self._ended or self._link is None:
            self._ended = True
            return
        self._ended = True
        reason = self._link.ws.closed
        self._link.record_close(reason.code if reason else CloseCode.ABNORMAL_CLOSURE, reason)
        self._link.closed.set()
        if self._on_end is not None:
            self._on_end()

    async def aclose(self) -> None:
        """trio-websocket closing its channel: the WebSocket is closed or closing."""
        self.end()
        await trio.lowlevel.checkpoint()

    async def __aenter__(self) -> Inlet:
        await trio.lowlevel.checkpoint()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # The reader task holds the channel in ``async with`` and leaves it on
        # every way out: the end is never missed.
        self.end()


async def open_server_connection(
    nursery: trio.Nursery, stream: trio.abc.Stream, max_message_size: int
) -> tuple[WebSocketRequest, tuple[WebSocketConnection, Inlet] | None]:
    """What ``wrap_server_stream`` does, with an :class:`Inlet` when supported.

    Starts trio-websocket's reader in ``nursery`` and returns the opening
    request, with the connection and the inlet to :meth:`Inlet.bind` before
    accepting (``None``: read with :meth:`Link.pump` instead).
    """
    if not inline_supported():
        request = await wrap_server_stream(nursery, stream, max_message_size=max_message_size)
        return request, None
    ws = WebSocketConnection(
        stream,
        WSConnection(ConnectionType.SERVER),
        max_message_size=max_message_size,
    )
    inlet = Inlet()
    for name in _CHANNELS:
        setattr(ws, name, inlet)
    nursery.start_soon(ws._reader_task)
    return await ws._get_request(), (ws, inlet)
