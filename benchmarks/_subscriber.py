"""One subscriber stream of the load client, and the broadcast all of them receive.

:class:`Subscriber` is an asyncio protocol that parses an ``/sse`` or ``/ws``
stream as it arrives and checks every sequence number against the expected
one; :class:`Phase` holds what all subscribers share during one broadcast.
Everything here runs in the client's event loop callbacks, so it is written
for speed: whole reads are parsed at once (see ``_wire``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from itertools import repeat
from typing import cast

from ._wire import (
    JSON,
    OP_PONG,
    RAW,
    SSE,
    ChunkedDecoder,
    ExpectedSequence,
    HeadParser,
    SSEEvents,
    WebSocketFrames,
    sequences,
    sequences_and_times,
    websocket_frame,
)

__all__ = ["Phase", "Subscriber"]


@dataclass
class Phase:
    """Shared state of one broadcast being received by every subscriber."""

    target: int = 0  # events each subscriber must receive
    subscribers: int = 0
    complete: int = 0
    delivered: int = 0
    errors: int = 0
    first_send_ns: int = 0
    last_receive_ns: int = 0
    latencies: list[int] = field(default_factory=list)
    latency_events: list[bytes] = field(default_factory=list)  # the hex seq of each latency
    record_latency: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)
    sequence: ExpectedSequence = field(init=False)

    def __post_init__(self) -> None:
        self.sequence = ExpectedSequence(self.target)

    def finish_one(self) -> None:
        """One more subscriber got all its events; the last one sets ``done``."""
        self.complete += 1
        if self.complete >= self.subscribers:
            self.done.set()


class Subscriber(asyncio.Protocol):
    """One ``/sse`` or ``/ws`` stream; counts and checks what arrives."""

    def __init__(self, request: bytes, websocket: bool) -> None:
        self.request = request
        self.websocket = websocket
        self.transport: asyncio.Transport | None = None
        self.head: HeadParser | None = HeadParser()
        self.chunked: ChunkedDecoder | None = None
        self.sse = SSEEvents()
        self.frames = WebSocketFrames()
        self.phase = Phase()
        self.expected = 0
        self.received = 0
        self.failure = ""
        self.closed = False

    def start_phase(self, phase: Phase) -> None:
        """Expect ``phase``'s events from sequence number 0 on."""
        self.phase = phase
        self.expected = 0
        self.received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.received < self.phase.target and not self.failure:
            self.failure = f"connection lost: {exc!r}"

    def data_received(self, data: bytes) -> None:
        # Latency ends when the bytes reach the client, before it parses them.
        now = time.monotonic_ns()
        try:
            self.parse(data, now)
        except ValueError as exc:  # a malformed response: count it, stop reading
            self.failure = f"malformed stream: {exc}"
            if self.transport is not None:
                self.transport.abort()

    def parse(self, data: bytes, now: int) -> None:
        """Consume one read, received at ``now``: response head, then chunks, SSE events or frames.

        The common read, one event in one chunk or one frame, takes a short
        path of a few C calls, as cheap for SSE as for WebSocket.
        """
        if self.head is not None:
            rest = self.head.feed(data)
            if rest is None:
                return
            self.check_head(self.head)
            self.head = None
            data = rest
        if self.websocket:
            frames = self.frames
            if frames.one_text(data) and data[2] != 0x7B:  # not JSON ("{")
                self.receive(b"\n" + data[2:], RAW, now)
                return
            texts = frames.feed(data)
            if frames.pings:
                for ping in frames.pings:
                    if self.transport is not None:
                        self.transport.write(websocket_frame(OP_PONG, ping))
                frames.pings.clear()
            if frames.close_received and not self.failure:
                self.failure = "closed by the server"
            if not texts:
                return
            texts.append(b"")
            blob = b"\n" + b"\n".join(texts)
            kind = JSON if blob[1:2] == b"{" else RAW
        else:
            chunked = self.chunked
            if (
                chunked is not None
                and not self.sse.buffer
                and chunked.whole_chunk(data)
                and data.endswith(b"\n\n\r\n")
            ):
                # Whole events in one whole chunk: the chunk's size line ends
                # with the LF the SSE pattern expects first, so the read is
                # searched as it is.
                self.receive(data, SSE, now)
                return
            blob = self.sse.feed(chunked.feed(data) if chunked is not None else data)
            if not blob:
                return
            kind = SSE
        self.receive(blob, kind, now)

    def check_head(self, head: HeadParser) -> None:
        """Record a failure unless the response head is what the contract says."""
        if self.websocket:
            if head.status != 101:
                self.failure = f"handshake status {head.status}"
        elif head.status != 200:
            self.failure = f"status {head.status}"
        elif not head.headers.get("content-type", "").startswith("text/event-stream"):
            self.failure = f"content-type {head.headers.get('content-type')!r}"
        if head.headers.get("transfer-encoding", "").lower() == "chunked":
            self.chunked = ChunkedDecoder()

    def receive(self, blob: bytes, kind: int, now: int) -> None:
        """Count and check the events in ``blob`` (``_wire.sequences``), received at ``now``."""
        phase = self.phase
        expected = self.expected
        if phase.record_latency or not expected:
            # Send times are parsed only when needed: for latency, or for the
            # first event of a broadcast (where the measured window starts).
            timed = sequences_and_times(blob, kind)
            if not timed:
                return
            seqs = [seq for seq, _ in timed]
            if seqs[0] == b"0":
                sent = int(timed[0][1], 16)
                if not phase.first_send_ns or sent < phase.first_send_ns:
                    phase.first_send_ns = sent
            if phase.record_latency:
                phase.latencies.extend(now - int(sent_hex, 16) for _, sent_hex in timed)
                phase.latency_events.extend(seqs)
        else:
            seqs = sequences(blob, kind)
        count = len(seqs)
        if not count:
            return
        if phase.sequence.matches(seqs, expected):
            self.expected = expected + count
        else:
            errors = 0
            for number in map(int, seqs, repeat(16, count)):
                errors += number != expected
                expected = number + 1
            phase.errors += errors
            self.expected = expected
        before = self.received
        self.received = before + count
        phase.delivered += count
        phase.last_receive_ns = now  # reads come in time order
        if before < phase.target <= self.received:
            phase.finish_one()
