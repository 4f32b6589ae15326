"""The servers under test and the scenarios, full size and ``--quick`` size."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FULL", "QUICK", "SERVERS", "Scenario", "ServerSpec"]


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """A server file in ``benchmarks/servers/`` and how to compare it."""

    name: str  # module name in benchmarks.servers
    transport: str  # "sse" or "ws"
    label: str
    baseline: str  # the trio_stream server its ratios are computed against

    @property
    def module(self) -> str:
        return f"benchmarks.servers.{self.name}"


SERVERS: tuple[ServerSpec, ...] = (
    ServerSpec("trio_stream_sse", "sse", "trio_stream SSE (Hypercorn trio)", "trio_stream_sse"),
    ServerSpec(
        "uvicorn_sse_starlette",
        "sse",
        "sse-starlette + uvicorn (uvloop, httptools)",
        "trio_stream_sse",
    ),
    ServerSpec(
        "hypercorn_sse_starlette", "sse", "sse-starlette + Hypercorn trio", "trio_stream_sse"
    ),
    ServerSpec("bare_trio_sse", "sse", "bare trio sockets SSE (ceiling)", "trio_stream_sse"),
    ServerSpec("trio_stream_ws", "ws", "trio_stream WebSocket", "trio_stream_ws"),
    ServerSpec(
        "trio_websocket_channels",
        "ws",
        "trio-websocket + channel per connection",
        "trio_stream_ws",
    ),
    ServerSpec("websockets_asyncio", "ws", "websockets asyncio broadcast()", "trio_stream_ws"),
    ServerSpec(
        "websockets_asyncio_queues",
        "ws",
        "websockets asyncio, queue per connection",
        "trio_stream_ws",
    ),
    ServerSpec("websockets_trio", "ws", "websockets trio broadcast()", "trio_stream_ws"),
)


@dataclass(frozen=True, slots=True)
class Scenario:
    """One load shape. ``mode`` is "stream" (measure a broadcast) or "idle" (measure RSS)."""

    key: str
    title: str
    mode: str
    connections: int
    count: int
    size: int
    rate: float
    latency: bool
    deadline: float  # seconds for the measured broadcast
    connect_deadline: float  # seconds to open the subscribers (and measure RSS)
    warmup: int = 0  # C: connections opened before the "before" RSS
    settle: float = 0.5  # C: seconds of quiet before each RSS reading

    def describe(self) -> str:
        """The load in words, e.g. for the README."""
        if self.mode == "idle":
            return (
                f"{self.title}: {self.connections:,} open streams, server RSS per connection "
                f"(after {self.warmup} warm-up streams)"
            )
        rate = f"at {self.rate:g} events/s" if self.rate else "as fast as possible"
        subscribers = "subscriber" if self.connections == 1 else "subscribers"
        return (
            f"{self.title}: 1 topic to {self.connections:,} {subscribers}, "
            f"{self.count:,} events of {self.size} B {rate}"
        )


FULL: dict[str, Scenario] = {
    "A": Scenario("A", "fan-out", "stream", 1000, 500, 100, 0, False, 10.0, 60.0),
    "B": Scenario("B", "latency", "stream", 100, 200, 100, 20, True, 20.0, 30.0),
    "C": Scenario("C", "idle connections", "idle", 5000, 1, 100, 0, False, 15.0, 120.0,
                  warmup=50),
    "D": Scenario("D", "one stream (LLM tokens)", "stream", 1, 20000, 20, 0, False, 20.0, 10.0),
}  # fmt: skip

QUICK: dict[str, Scenario] = {
    "A": Scenario("A", "fan-out", "stream", 20, 50, 100, 0, False, 10.0, 10.0),
    "B": Scenario("B", "latency", "stream", 10, 30, 100, 200, True, 10.0, 10.0),
    "C": Scenario("C", "idle connections", "idle", 50, 1, 100, 0, False, 10.0, 10.0,
                  warmup=5, settle=0.1),
    "D": Scenario("D", "one stream (LLM tokens)", "stream", 1, 500, 20, 0, False, 10.0, 10.0),
}  # fmt: skip
