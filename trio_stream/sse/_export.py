"""`StreamingResponse`: raw bytes, NDJSON or CSV from an async source, with backpressure."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import trio

from ._asgi import Scope
from ._compress import SyncFlushGzip
from ._feeds import Feed, producer_from
from ._streaming import ResponseBase, encode_headers
from ._window import ChunkSender, ChunkWindow
from ._writer import Ending, Writer

__all__ = [
    "ExportProducer",
    "ExportSource",
    "ExportStatistics",
    "StreamingResponse",
    "encode_chunk",
]

logger = logging.getLogger("trio_stream.sse")

ExportProducer = Callable[[trio.abc.SendChannel[Any]], Awaitable[None]]
"""An ``async def producer(send_channel)`` that sends items; returning ends the body."""

ExportSource = (
    AsyncIterable[Any] | AbstractAsyncContextManager[AsyncIterable[Any]] | ExportProducer
)
"""What :class:`StreamingResponse` streams: an async iterable of items, an async
context manager yielding one (``trio.as_safe_channel``), or an :data:`ExportProducer`."""


def encode_chunk(item: bytes | bytearray | memoryview | str) -> bytes:
    """A raw body chunk: bytes-like as is, ``str`` as UTF-8; anything else is a TypeError."""
    if isinstance(item, bytes):
        return item
    if isinstance(item, bytearray | memoryview):
        return bytes(item)
    if isinstance(item, str):
        return item.encode("utf-8")
    raise TypeError(f"a byte stream source produced {type(item).__name__}, not bytes or str")


@dataclass(frozen=True, slots=True)
class ExportStatistics:
    """A snapshot of one :class:`StreamingResponse`.

    ``produced`` chunks came from the source; ``chunks`` of them went out in
    ``writes`` body sends carrying ``bytes`` (as sent: after compression);
    ``queued`` wait for the writer and ``in_flight`` are queued or being
    written now, ``peak_in_flight`` the most ever (never above
    ``capacity``). ``streaming`` while the body is being written;
    ``completed`` once it ended normally; ``aborted`` once it ended without
    its end (the source failed, the client stopped reading, or it went
    away: ``disconnected``).
    """

    produced: int
    chunks: int
    bytes: int
    writes: int
    queued: int
    in_flight: int
    peak_in_flight: int
    capacity: int
    streaming: bool
    completed: bool
    aborted: bool
    disconnected: bool


async def _fill_window(iterator: AsyncIterator[Any], send_channel: ChunkSender[Any]) -> None:
    await send_channel.fill_from(iterator)


class _ExportFeed:
    """The source's producer task writing into the window; the writer takes from it."""

    def __init__(self, producer: ExportProducer, window: ChunkWindow, sender: ChunkSender[Any]):
        self._producer = producer
        self._window = window
        self._sender = sender
        self.failed = False

    async def run(self) -> None:
        await trio.lowlevel.checkpoint()
        with self._sender:
            try:
                await self._producer(self._sender)
            except Exception:
                logger.exception("export source failed; aborting the response")
                self.failed = True
                self._window.close()

    async def next_batch(self, max_events: int) -> list[bytes]:
        return await self._window.take(max_events)

    def backlog(self) -> tuple[int, int]:
        return self._window.queued, self._window.capacity


def _content_disposition(filename: str) -> str:
    # RFC 6266: an ASCII fallback for old clients, the exact name as filename*.
    fallback = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\%' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


class StreamingResponse(ResponseBase):
    """A streaming HTTP response for non-event data (raw bytes, NDJSON, CSV), as an ASGI app.

    ``source`` is an async iterable of items (an async generator reading a
    database cursor, say), an async context manager yielding one, or a
    producer ``async def producer(send_channel)`` that sends items into a
    ``trio.abc.SendChannel``; returning ends the body. ``encode`` turns one
    item into bytes, in the producer's task (default :func:`encode_chunk`:
    bytes as they are, ``str`` as UTF-8); see :func:`ndjson_response`,
    :func:`csv_response` and :func:`file_response` for ready-made ones.

    Backpressure: at most ``capacity`` chunks (default 32) exist between the
    source and the socket, queued or being written; a chunk's room is freed
    only when the write carrying it returned. A slow reader thus stops the
    source (an async iterable is not even asked for its next item), and a
    stream holds at most ``capacity`` chunks of memory. Small chunks are
    batched: one write carries up to ``max_batch`` chunks (default half the
    capacity, so that the source refills the other half during the write)
    or ``write_size`` bytes (default 64 KiB).

    Cancellation: the same machinery as :class:`EventStream`. A client
    disconnect cancels the source at once; an async generator is closed
    (``aclose``, bounded and shielded) so its ``finally`` blocks run: close
    cursors and files there (synchronously, or with a shielded, bounded
    await: the task is being cancelled). A send not completed within
    ``send_timeout`` seconds ends the response. An exception from the source
    is logged; the client gets no error text: the body is cut without its
    end (no final chunk in HTTP/1.1, a stream reset in HTTP/2), so it sees an
    incomplete transfer instead of a truncated file that looks complete.
    The same happens to a client too slow for ``send_timeout``. A server
    shutdown lets an export run to the end of the grace period.

    Headers: ``content-type`` from ``media_type``, ``cache-control:
    no-store``, ``x-content-type-options: nosniff``, ``x-accel-buffering:
    no`` (a proxy passes backpressure through instead of spooling the
    export); ``content-disposition: attachment`` when ``filename`` is given;
    ``content-length`` when given (it must be exact) and not compressing.
    ``compress=True`` gzips for clients that accept it (one flush per
    write). ``preamble`` is written first (a CSV header). HEAD gets the
    headers only. Build one per request.
    """

    _watch_shutdown = False

    def __init__(
        self,
        source: ExportSource,
        *,
        media_type: str = "application/octet-stream",
        encode: Callable[[Any], bytes] = encode_chunk,
        capacity: int = 32,
        max_batch: int | None = None,
        write_size: int = 64 * 1024,
        send_timeout: float = 30.0,
        filename: str | None = None,
        content_length: int | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        compress: bool = False,
        preamble: bytes = b"",
        shutdown_event: trio.Event | None = None,
    ) -> None:
        if capacity < 1 or write_size < 1:
            raise ValueError("capacity and write_size must be >= 1")
        if content_length is not None and content_length < 0:
            raise ValueError("content_length must be >= 0")
        super().__init__(
            keepalive_interval=None,
            send_timeout=send_timeout,
            max_batch=max_batch if max_batch is not None else max(1, capacity // 2),
            headers=headers,
            compress=compress,
            shutdown_event=shutdown_event,
        )
        own = [("content-type", media_type)]
        if filename is not None:
            own.append(("content-disposition", _content_disposition(filename)))
        self._own_headers = own
        self._producer = producer_from(source, _fill_window)
        self._item_encoder = encode
        self._capacity = capacity
        self._write_size = write_size
        self._content_length = content_length
        self._preamble = preamble
        self._encode = b"".join
        self._window = ChunkWindow(capacity, write_size)
        self._completed = False
        self._aborted = False

    def _open_feed(self, scope: Scope) -> AbstractAsyncContextManager[Feed[Any]]:
        return self._open_window()

    @asynccontextmanager
    async def _open_window(self) -> AsyncIterator[Feed[bytes]]:
        window = self._window = ChunkWindow(self._capacity, self._write_size)  # a fresh one
        feed = _ExportFeed(self._producer, window, ChunkSender(window, self._item_encoder))
        try:
            yield feed
        finally:
            window.close()

    def _base_headers(self, gzip: SyncFlushGzip | None) -> list[tuple[bytes, bytes]]:
        headers = encode_headers(self._own_headers)
        headers += [
            (b"cache-control", b"no-store"),
            (b"x-content-type-options", b"nosniff"),
            (b"x-accel-buffering", b"no"),
        ]
        if self._content_length is not None and gzip is None:
            headers.append((b"content-length", b"%d" % self._content_length))
        return headers

    def _batch_full(self, batch: list[Any]) -> bool:
        return self._window.in_hand_bytes >= self._write_size

    def _written(self, count: int) -> None:
        self._window.release()

    async def _finish(self, feed: Feed[Any], writer: Writer, ending: Ending) -> None:
        if feed.failed or writer.broken:
            # No final chunk: the client must see an incomplete body, not a
            # shorter file that looks whole.
            logger.warning("export aborted: %s", "source failed" if feed.failed else "send failed")
            self._aborted = True
            await trio.lowlevel.checkpoint()
            return
        self._completed = await writer.write(b"", more_body=False)
        self._aborted = not self._completed

    def statistics(self) -> ExportStatistics:
        """An :class:`ExportStatistics` snapshot of the response (cheap; no checkpoint)."""
        writer, window = self._writer, self._window
        disconnected = self._ending is not None and self._ending.disconnected
        streaming = self._feed is not None
        return ExportStatistics(
            produced=window.produced,
            chunks=writer.events if writer is not None else 0,
            bytes=writer.bytes if writer is not None else 0,
            writes=writer.writes if writer is not None else 0,
            queued=window.queued if streaming else 0,
            in_flight=window.in_flight if streaming else 0,
            peak_in_flight=window.peak_in_flight,
            capacity=self._capacity,
            streaming=streaming,
            completed=self._completed,
            aborted=self._aborted or disconnected,
            disconnected=disconnected,
        )
