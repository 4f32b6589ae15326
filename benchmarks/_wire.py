"""Minimal client-side wire parsing for the load client: HTTP head, chunked body, SSE, WebSocket.

Sans-IO and as cheap as Python allows, because the load client must never be
the bottleneck. It understands exactly what CONTRACT.md promises (LF line
endings, one ``data:`` line per event, unfragmented server frames) and no more.
"""

from __future__ import annotations

import base64
import os
import re
import struct

__all__ = [
    "JSON",
    "RAW",
    "SSE",
    "ChunkedDecoder",
    "ExpectedSequence",
    "HeadParser",
    "SSEEvents",
    "WebSocketFrames",
    "http_request",
    "sequences",
    "sequences_and_times",
    "websocket_frame",
    "websocket_request",
]

_MAX_HEAD = 16384

OP_TEXT = 0x1
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA


def http_request(method: str, target: str, host: str, *, close: bool) -> bytes:
    """An HTTP/1.1 request without a body."""
    connection = "close" if close else "keep-alive"
    return (
        f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nAccept: */*\r\n"
        f"Content-Length: 0\r\nConnection: {connection}\r\n\r\n"
    ).encode("latin-1")


def websocket_request(target: str, host: str) -> bytes:
    """An HTTP/1.1 WebSocket upgrade request (no extensions, so no compression)."""
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    return (
        f"GET {target} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        f"Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode("latin-1")


def websocket_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (RFC 6455 requires clients to mask)."""
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    # Client frames are rare (control requests, pongs): clarity over speed.
    return head + mask + bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))


class HeadParser:
    """Collects an HTTP response head; ``feed`` returns the bytes after it once complete."""

    def __init__(self) -> None:
        self.buffer = b""
        self.status = 0
        self.headers: dict[str, str] = {}

    def feed(self, data: bytes) -> bytes | None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > _MAX_HEAD:
                raise ValueError("response head too long")
            return None
        lines = self.buffer[:end].decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ", 2)[1])
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        rest = self.buffer[end + 4 :]
        self.buffer = b""
        return rest


_HEX_SIZES = [b"%x" % size for size in range(1 << 14)]  # size lines of chunks up to 16 KiB


class ChunkedDecoder:
    """Incremental ``Transfer-Encoding: chunked`` decoder (no trailers expected)."""

    def __init__(self) -> None:
        self.buffer = b""
        self.remaining = 0  # body bytes left in the current chunk
        self.skip = 0  # bytes of the CRLF after a chunk still to skip
        self.finished = False

    def whole_chunk(self, data: bytes) -> int:
        """Where the data of ``data`` starts, if it is exactly one whole chunk; else 0.

        The common read (an event written at once), checked in a few C
        calls, so that an SSE event costs the client no more than a
        WebSocket frame. 0 too when the decoder holds part of a chunk.
        """
        if self.buffer or self.remaining or self.skip or self.finished:
            return 0
        # The size line must be what this read's length implies: one
        # comparison, instead of parsing the hex (which costs more than all
        # the rest). Other spellings (extensions, leading zeros) take the
        # general path.
        end = data.find(b"\r\n")
        size = len(data) - end - 4
        if 0 < size < len(_HEX_SIZES) and data[:end] == _HEX_SIZES[size]:
            return end + 2
        return 0

    def feed(self, data: bytes) -> bytes:
        start = self.whole_chunk(data)
        if start:
            return data[start:-2]
        buffer = self.buffer + data if self.buffer else data
        out: list[bytes] = []
        pos = 0
        size = len(buffer)
        while pos < size and not self.finished:
            if self.remaining:
                take = min(self.remaining, size - pos)
                out.append(buffer[pos : pos + take])
                pos += take
                self.remaining -= take
                if not self.remaining:
                    self.skip = 2
            elif self.skip:
                take = min(self.skip, size - pos)
                pos += take
                self.skip -= take
            else:
                end = buffer.find(b"\r\n", pos)
                if end < 0:
                    break
                length = int(buffer[pos:end].split(b";", 1)[0], 16)
                pos = end + 2
                if length == 0:
                    self.finished = True
                self.remaining = length
        self.buffer = buffer[pos:]
        return b"".join(out)


class SSEEvents:
    """Cuts an SSE body at event boundaries.

    ``feed`` returns the bytes of the events completed so far (after an LF,
    ending with a blank line) and keeps the incomplete rest for the next call;
    ``buffer`` is that rest.
    """

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, data: bytes) -> bytes:
        buffer = self.buffer + data if self.buffer else data
        cut = buffer.rfind(b"\n\n") + 2
        if cut < 2:
            self.buffer = buffer
            return b""
        self.buffer = buffer[cut:]
        return b"\n" + buffer[:cut]  # the LF that :func:`sequences` expects first


class WebSocketFrames:
    """Parses unmasked server frames; ``feed`` returns the payloads of complete text messages.

    Pings are collected in ``pings`` (the caller answers and clears them); a
    close frame sets ``close_received``. Binary messages are ignored.
    """

    def __init__(self) -> None:
        self.buffer = b""
        self.fragments: list[bytes] = []
        self.fragment_opcode = 0
        self.pings: list[bytes] = []
        self.close_received = False

    def one_text(self, data: bytes) -> bool:
        """Whether ``data`` is exactly one whole short text frame, nothing held before it.

        The common read, checked in a few C calls; its payload is ``data[2:]``.
        """
        return (
            not self.buffer
            and not self.fragments
            and len(data) > 2
            and data[0] == 0x81
            and data[1] < 126
            and len(data) == data[1] + 2
        )

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self.buffer + data if self.buffer else data
        size = len(buffer)
        pos = 0
        texts = []
        while size - pos >= 2:
            first = buffer[pos]
            length = buffer[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                start = pos + 4
                if start > size:
                    break
                length = int.from_bytes(buffer[pos + 2 : start], "big")
            elif length == 127:
                start = pos + 10
                if start > size:
                    break
                length = int.from_bytes(buffer[pos + 2 : start], "big")
            end = start + length
            if end > size:
                break
            pos = end
            if first == 0x81:  # the common case: a whole text message
                texts.append(buffer[start:end])
                continue
            opcode = first & 0x0F
            if opcode >= 0x8:  # control frames are never fragmented
                if opcode == OP_PING:
                    self.pings.append(buffer[start:end])
                elif opcode == OP_CLOSE:
                    self.close_received = True
                continue
            if opcode:
                self.fragment_opcode = opcode
            self.fragments.append(buffer[start:end])
            if first & 0x80:  # FIN of a fragmented message
                if self.fragment_opcode == OP_TEXT:
                    texts.append(b"".join(self.fragments))
                self.fragments = []
        self.buffer = buffer[pos:]
        return texts


# Sequence numbers (and send times) out of many events at once, in C: the
# client's per-event cost must stay far below the server's. Every pattern
# starts with a literal (a blob starts with LF, see below), which lets the
# regex engine skip ahead; a MULTILINE "^" would try every byte (4x slower).
SSE, RAW, JSON = 0, 1, 2
_SEQUENCE = {
    SSE: re.compile(rb"\ndata: ?([0-9a-f]+) "),
    RAW: re.compile(rb"\n([0-9a-f]+) "),
    JSON: re.compile(rb'"data": ?"([0-9a-f]+) '),
}
_SEQUENCE_AND_TIME = {
    SSE: re.compile(rb"\ndata: ?([0-9a-f]+) ([0-9a-f]+)"),
    RAW: re.compile(rb"\n([0-9a-f]+) ([0-9a-f]+)"),
    JSON: re.compile(rb'"data": ?"([0-9a-f]+) ([0-9a-f]+)'),
}


def sequences(blob: bytes, kind: int) -> list[bytes]:
    """The hex sequence numbers of the events in ``blob``.

    ``blob`` starts with LF, then holds, by ``kind``: ``SSE`` complete events
    (from :class:`SSEEvents`, or one whole chunk of them as read: its size
    line ends with that LF); ``RAW`` text messages, or ``JSON`` messages,
    each followed by LF.
    """
    found: list[bytes] = _SEQUENCE[kind].findall(blob)
    return found


def sequences_and_times(blob: bytes, kind: int) -> list[tuple[bytes, bytes]]:
    """Like :func:`sequences`, with each event's hex send time."""
    found: list[tuple[bytes, bytes]] = _SEQUENCE_AND_TIME[kind].findall(blob)
    return found


class ExpectedSequence:
    """The sequence numbers ``0 .. count-1`` as they appear on the wire, for cheap checks.

    ``matches(seqs, first)`` is True when ``seqs`` (hex, as found by
    :func:`sequences`) are exactly ``first, first + 1, ...``: one join and one
    comparison in C instead of an ``int()`` per event.
    """

    def __init__(self, count: int) -> None:
        hexes = [b"%x" % seq for seq in range(count)]
        self.blob = b" ".join(hexes)
        self.offsets = [0]
        for text in hexes:
            self.offsets.append(self.offsets[-1] + len(text) + 1)

    def matches(self, seqs: list[bytes], first: int) -> bool:
        end = first + len(seqs)
        if first < 0 or end >= len(self.offsets):
            return False
        return b" ".join(seqs) == self.blob[self.offsets[first] : self.offsets[end] - 1]
