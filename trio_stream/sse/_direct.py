"""Body chunks written straight to Hypercorn's HTTP/1.1 connection.

Each ASGI body message Hypercorn sends travels ``HTTPStream.app_send`` →
a ``Body`` event → ``H11Protocol.stream_send`` → ``h11.Connection.send`` →
a ``RawData`` event → ``TCPServer.protocol_send`` (a lock and a shielded
cancel scope) → ``send_all``. With a hundred subscribers of a paced topic
that path is most of the server's CPU per event, and one event's fan-out
takes milliseconds (the profile is in ``benchmarks/README.md``).

A chunk of an HTTP/1.1 chunked body is ``<size>\\r\\n<data>\\r\\n``, and h11
keeps no state for it (only the end of the body moves its state machine).
So once the response has started, :class:`DirectBody` writes the chunks of
a stream to the connection's transport itself, under the connection's own
send lock; the body's end still goes through ASGI, so h11 and Hypercorn see
it and can reuse the connection.

This reaches into Hypercorn's and h11's internals (the objects behind the
``send`` callable Hypercorn gives the app). :func:`direct_body` checks each
one and returns None wherever anything differs: HTTP/2, an HTTP/1.0 client
(no chunked encoding), a ``send`` wrapped by middleware (which may change
the body), another server, another Hypercorn or h11. The stream then uses
plain ASGI sends: it costs CPU, not correctness. Middleware that only adds
response headers can stay transparent by wrapping ``send`` in
:class:`HeaderSend`.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import trio
from h11 import SEND_BODY
from h11._writers import ChunkedWriter
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.protocol.http_stream import HTTPStream
from hypercorn.trio.tcp_server import TCPServer

from ._asgi import Message, Send

__all__ = ["DirectBody", "HeaderSend", "direct_body"]

logger = logging.getLogger("trio_stream.sse")

# os.write takes a socket's descriptor on POSIX systems only.
_WRITE_FD = sys.platform != "win32"


class HeaderSend:
    """An ASGI ``send`` that adds headers to ``http.response.start``, nothing else.

    Every other message passes to ``inner`` unchanged, so :func:`direct_body`
    may look through it to the server's own ``send``.
    """

    __slots__ = ("_headers", "inner")

    def __init__(self, inner: Send, headers: list[tuple[bytes, bytes]]) -> None:
        self.inner = inner
        self._headers = headers

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), *self._headers]}
        await self.inner(message)


class DirectBody:
    """Writes the chunks of one started HTTP/1.1 chunked response to its connection.

    :meth:`write_now` writes without waiting when the kernel takes the whole
    chunk at once (the common case: a subscriber that keeps up); what it
    could not write, :meth:`send_rest` sends under the connection's lock.
    :meth:`write_nowait` does the same from a task other than the response's.
    """

    __slots__ = ("_lock", "_socket", "_stream", "_torn")

    def __init__(self, stream: trio.abc.Stream, lock: trio.Lock) -> None:
        self._stream = stream
        self._lock = lock
        # Plain TCP on a POSIX system: the socket's descriptor takes os.write.
        self._socket = (
            stream.socket if _WRITE_FD and isinstance(stream, trio.SocketStream) else None
        )
        # Part of a chunk went out from another task (write_nowait), the rest not yet.
        self._torn = False

    @property
    def writes_at_once(self) -> bool:
        """True when a write may go out without waiting (plain TCP: not TLS)."""
        return self._socket is not None

    def _write_some(self, chunk: bytes) -> int:
        if self._socket is None or self._torn or self._lock.locked():
            return 0
        # The descriptor is looked up on every write, never kept: once the
        # server closes the socket it is -1 (EBADF), never a number the
        # kernel may have given to another connection since.
        try:
            return os.write(self._socket.fileno(), chunk)
        except BlockingIOError:
            return 0

    def write_now(self, data: bytes) -> memoryview | None:
        """Frame ``data`` as one chunk and write what the kernel takes now.

        Returns the part still to send with :meth:`send_rest` (None when all
        went out; an empty ``data`` writes nothing: a 0-size chunk would end
        the body). After a partial write it holds the connection's send lock:
        nothing else may be written to the connection before the rest.
        Raises ``OSError`` when the client is gone.
        """
        if not data:
            return None
        chunk = b"%x\r\n%b\r\n" % (len(data), data)
        written = self._write_some(chunk)
        if written == len(chunk):
            return None
        if written:
            self._lock.acquire_nowait()  # free: checked above, and no checkpoint since
        return memoryview(chunk)[written:]

    def write_nowait(self, data: bytes) -> memoryview | None:
        """:meth:`write_now` for a task other than the response's: never takes the lock.

        Raises :class:`trio.WouldBlock` when nothing was written (the kernel
        took nothing, TLS, a send in progress or a torn chunk), ``OSError``
        when the client is gone. After a partial write it returns the rest:
        the chunk is torn until the response's task sends the rest with
        :meth:`send_rest`, and until then :meth:`write_now` and
        :meth:`write_nowait` write nothing.
        """
        if not data:
            return None
        # _write_some inlined: this runs once per event per subscriber in the
        # publisher's task, where every call counts.
        sock = self._socket
        if sock is None or self._torn or self._lock.locked():
            raise trio.WouldBlock
        global _last_framed
        framed = _last_framed
        if data is framed[0]:
            chunk = framed[1]  # the same event, to the next subscriber
        else:
            chunk = b"%x\r\n%b\r\n" % (len(data), data)
            if len(data) <= _FRAMED_MAX:
                _last_framed = (data, chunk)
        try:
            written = os.write(sock.fileno(), chunk)  # looked up per write: see _write_some
        except BlockingIOError:
            raise trio.WouldBlock from None
        if written == len(chunk):
            return None
        self._torn = True
        return memoryview(chunk)[written:]

    async def send_rest(self, rest: memoryview) -> None:
        """Send what :meth:`write_now` or :meth:`write_nowait` left, then release the lock.

        Call it from the response's task; after a partial :meth:`write_now`
        that task holds the lock (from another this would wait for itself).
        Raises what the transport raises (``trio.BrokenResourceError``
        when the client is gone). A cancelled send may have written part of the
        chunk: the response must then end without another write (the server
        closes the connection when the app returns mid-body).
        """
        lock = self._lock
        if lock.statistics().owner is not trio.lowlevel.current_task():
            await lock.acquire()
        try:
            await self._stream.send_all(rest)
            self._torn = False
        finally:
            lock.release()


# The last chunk framed by write_nowait, with the data it frames: an event
# fanned out inline reaches write_nowait once per subscriber with the same
# bytes object, so it is framed once. Holding the data keeps its identity
# from being reused; large data is not held.
_FRAMED_MAX = 16384
_last_framed: tuple[bytes, bytes] = (b"", b"")


def direct_body(send: Send) -> DirectBody | None:
    """The direct writer of the response ``send`` belongs to, or None.

    Call after ``http.response.start`` went out through ``send``: only then
    is the framing (chunked or not) known.
    """
    while isinstance(send, HeaderSend):
        send = send.inner
    http_stream: Any = getattr(send, "__self__", None)
    if not isinstance(http_stream, HTTPStream):
        return None
    protocol: Any = getattr(http_stream.send, "__self__", None)
    if not isinstance(protocol, H11Protocol):
        return None  # HTTP/2
    connection = getattr(protocol, "connection", None)
    if (
        getattr(connection, "our_state", None) is not SEND_BODY
        or type(getattr(connection, "_writer", None)) is not ChunkedWriter
    ):
        return None  # an HTTP/1.0 client, or the response has not started
    server: Any = getattr(protocol.send, "__self__", None)
    if not isinstance(server, TCPServer):
        return None
    stream = getattr(server, "stream", None)
    lock = getattr(server, "send_lock", None)
    if not isinstance(stream, trio.abc.Stream) or not isinstance(lock, trio.Lock):
        return None
    return DirectBody(stream, lock)
