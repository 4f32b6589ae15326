"""What every benchmark server shares: payloads, control parsing, the CLI (see CONTRACT.md).

Synchronous and I/O-free, so that asyncio and trio servers use the same code and
differ only in how they move bytes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

__all__ = [
    "QUEUE_CAPACITY",
    "Broadcast",
    "answer_text",
    "control_answer",
    "parse_args",
    "parse_broadcast_query",
    "report_ready",
]

#: Per-subscriber queue capacity, the same for every server that has one.
#: Large enough to absorb a burst, small enough that a stalled reader makes
#: the publisher wait instead of buffering a whole run.
QUEUE_CAPACITY = 256

# Bounds on what one control request may ask, so that a typo cannot make a
# server allocate without limit.
_MAX_COUNT = 1_000_000
_MAX_SIZE = 1 << 20
_MAX_RATE = 1_000_000.0


@dataclass(frozen=True, slots=True)
class Broadcast:
    """One broadcast request: ``count`` events of ``size`` bytes at ``rate`` per second.

    ``rate == 0`` means as fast as possible.
    """

    count: int
    size: int
    rate: float

    def __post_init__(self) -> None:
        if not 0 <= self.count <= _MAX_COUNT:
            raise ValueError(f"count out of range: {self.count}")
        if not 0 <= self.size <= _MAX_SIZE:
            raise ValueError(f"size out of range: {self.size}")
        if not 0 <= self.rate <= _MAX_RATE:
            raise ValueError(f"rate out of range: {self.rate}")

    def payload(self, seq: int) -> str:
        """The payload of event ``seq``, stamped with the current monotonic time."""
        header = f"{seq:x} {time.monotonic_ns():x} "
        if len(header) >= self.size:
            return header
        return header + "x" * (self.size - len(header))

    def due(self, start: float, seq: int) -> float:
        """When event ``seq`` is due (``time.monotonic()`` scale) for a paced broadcast."""
        return start + seq / self.rate if self.rate else start


def parse_broadcast_query(query: str) -> Broadcast:
    """Parse ``count=M&size=S&rate=R`` (an SSE control request's query string)."""
    fields = parse_qs(query, strict_parsing=False)
    try:
        return Broadcast(
            count=int(fields["count"][0]),
            size=int(fields.get("size", ["100"])[0]),
            rate=float(fields.get("rate", ["0"])[0]),
        )
    except (KeyError, IndexError) as exc:
        raise ValueError("count is required") from exc


def control_answer(
    request: object, subscribers: Callable[[], int], start: Callable[[Broadcast], None]
) -> object:
    """Answer one decoded WebSocket control request (a JSON object, see CONTRACT.md).

    ``{"op": "subscribers"}`` gets the count; ``{"op": "broadcast", "count": M,
    "size": S, "rate": R}`` calls ``start`` and gets ``"started"``; anything
    else gets ``"bad request"``. The caller JSON-encodes the answer.
    """
    if not isinstance(request, dict):
        return "bad request"
    if request.get("op") == "subscribers":
        return subscribers()
    if request.get("op") == "broadcast":
        try:
            spec = Broadcast(
                count=int(request["count"]),
                size=int(request.get("size", 100)),
                rate=float(request.get("rate", 0)),
            )
        except (KeyError, TypeError, ValueError):
            return "bad request"
        start(spec)
        return "started"
    return "bad request"


def answer_text(
    message: str | bytes, subscribers: Callable[[], int], start: Callable[[Broadcast], None]
) -> str:
    """:func:`control_answer` for servers that get raw text: decode, answer, encode."""
    try:
        request = json.loads(message)
    except ValueError:
        return json.dumps("bad request")
    return json.dumps(control_answer(request, subscribers, start))


def parse_args(description: str) -> argparse.Namespace:
    """The command line every server takes: ``--host`` and ``--port``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1", help="bind address (loopback)")
    parser.add_argument("--port", type=int, default=0, help="port, 0 for any free one")
    return parser.parse_args()


def report_ready(port: int) -> None:
    """Tell the harness the server is listening: one ``READY <port>`` line on stdout."""
    sys.stdout.write(f"READY {port}\n")
    sys.stdout.flush()
