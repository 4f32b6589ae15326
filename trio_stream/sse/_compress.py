"""gzip for event streams that never holds an event back (a sync flush after every write)."""

from __future__ import annotations

import zlib

__all__ = ["SyncFlushGzip"]


class SyncFlushGzip:
    """A gzip encoder for one response that flushes every write with ``Z_SYNC_FLUSH``.

    A plain gzip stream buffers input until it has a block worth emitting, so
    a proxy or middleware that gzips an event stream delays events by minutes.
    Here each :meth:`compress` call returns bytes that decode to everything
    written so far: every event reaches the client at once, and the
    compression context still spans events (repeated JSON keys compress well).

    Memory per stream is about ``2**(window_bits + 2) + 2**(mem_level + 9)``
    bytes (32 KiB with the defaults, instead of zlib's 256 KiB): it is paid
    once per open stream, so it is kept small on purpose.
    """

    def __init__(self, *, level: int = 6, window_bits: int = 12, mem_level: int = 5) -> None:
        # 16 + window_bits selects the gzip wrapper (header and CRC trailer).
        self._encoder = zlib.compressobj(level, zlib.DEFLATED, 16 + window_bits, mem_level)
        self._finished = False

    def compress(self, data: bytes) -> bytes:
        """Compress ``data`` and flush, so the client can decode all of it now."""
        return self._encoder.compress(data) + self._encoder.flush(zlib.Z_SYNC_FLUSH)

    def finish(self, data: bytes = b"") -> bytes:
        """Compress ``data`` and end the gzip stream (writes the trailer); once only."""
        if self._finished:
            return b""
        self._finished = True
        return self._encoder.compress(data) + self._encoder.flush(zlib.Z_FINISH)
