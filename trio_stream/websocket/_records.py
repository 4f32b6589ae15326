"""The adapter's small records: per-connection settings and statistics snapshots."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..core import Overflow, QueueStatistics
from ._codec import Codec

__all__ = ["ClientStatistics", "PeerSettings", "PeerStatistics", "WebSocketServerStatistics"]


@dataclass(frozen=True, slots=True)
class PeerSettings:
    """Per-connection policy, fixed by :func:`serve_websockets` (see its docstring)."""

    codec: Codec
    validate: Callable[[Any], Any] | None
    rate_limit: float | None
    rate_burst: int
    inbound_capacity: int
    outbound_capacity: int
    outbound_overflow: Overflow

    def __post_init__(self) -> None:
        if self.rate_limit is not None and (self.rate_limit <= 0 or self.rate_burst < 1):
            raise ValueError("rate_limit must be > 0 (or None) and rate_burst >= 1")
        if self.inbound_capacity < 1 or self.outbound_capacity < 1:
            raise ValueError("queue capacities must be at least 1")


@dataclass(frozen=True, slots=True)
class PeerStatistics:
    """A snapshot of one connection: message counts, both queues, rooms, close code."""

    messages_received: int
    messages_sent: int
    inbound: QueueStatistics
    outbound: QueueStatistics
    topics: tuple[str, ...]
    close_code: int | None


@dataclass(frozen=True, slots=True)
class WebSocketServerStatistics:
    """Counters of a running server, for ``/metrics``.

    ``open`` connections now; ``accepted`` since start; ``rejected`` handshakes
    by HTTP status; ``closed`` connections by close code (1006: lost);
    ``slow_consumers`` closed for falling behind; message counts include the
    open connections.
    """

    open: int
    accepted: int
    rejected: Mapping[int, int]
    closed: Mapping[int, int]
    slow_consumers: int
    messages_received: int
    messages_sent: int


@dataclass(frozen=True, slots=True)
class ClientStatistics:
    """A snapshot of a :class:`WebSocketClient`.

    ``connections`` established so far (reconnects = connections - 1);
    ``unsent`` messages taken from the outbox but not yet written (they go
    first on the next connection); the ``outbox`` and ``inbox`` queues.
    """

    connected: bool
    connections: int
    unsent: int
    outbox: QueueStatistics
    inbox: QueueStatistics
