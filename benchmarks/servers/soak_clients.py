"""The soak test's clients: SSE and WebSocket readers that misbehave, and count what they lose.

Every client follows one topic for the whole soak, as a series of sessions.
Each session picks a behaviour (``normal``, ``slow``: pauses between reads,
``frozen``: stops reading for a while, long enough for the server to give up
on it) and a route (straight to the server, or through one of the
fault-injecting proxies), and ends after a random time (a disconnect) or when
the server or a proxy closes it. The next session resumes from the last event
id received: the SSE client sends ``Last-Event-ID``, the WebSocket client
``?last_event_id=``.

Loss accounting: the publisher numbers each topic's events 0, 1, 2... A
client that resumed must see the number after the last one it got; a gap is
lost events, a repeat is a duplicate. A ``reset`` event (history no longer
covers the id) starts counting afresh and is counted apart: it is not a loss
of the server's making while history is long enough.
"""

from __future__ import annotations

import json
import random
import socket
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field

import trio
import trio_websocket

from trio_stream.protocol import SSEDecoder

__all__ = [
    "BEHAVIOURS",
    "Pace",
    "Plan",
    "Route",
    "Tally",
    "Track",
    "run_client",
    "sse_session",
    "topic_of",
    "ws_session",
]

BEHAVIOURS = ("normal", "normal", "normal", "slow", "frozen")
_SMALL_RECEIVE_BUFFER = 16 * 1024  # so that a frozen reader fills the path quickly
_MAX_HEAD = 16 * 1024


@dataclass
class Tally:
    """Totals over every client of one kind (``sse`` or ``ws``)."""

    sessions: int = 0
    resumes: int = 0
    events: int = 0
    lost: int = 0
    duplicates: int = 0
    resets: int = 0
    behaviours: Counter[str] = field(default_factory=Counter)
    routes: Counter[str] = field(default_factory=Counter)
    endings: Counter[str] = field(default_factory=Counter)
    endings_by_route: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready copy."""
        return {
            "sessions": self.sessions,
            "resumes": self.resumes,
            "events": self.events,
            "lost": self.lost,
            "duplicates": self.duplicates,
            "resets": self.resets,
            "behaviours": dict(self.behaviours),
            "routes": dict(self.routes),
            "endings": dict(self.endings),
            "endings_by_route": dict(self.endings_by_route),
        }


@dataclass
class Track:
    """One client's position in its topic, carried from session to session."""

    last_id: str | None = None
    last_seq: int | None = None

    def receive(self, tally: Tally, kind: str, data: str, event_id: str | None) -> None:
        """Account for one received event (``kind`` is its type)."""
        if kind == "reset":
            tally.resets += 1
            self.last_seq = None
            return
        seq = int(json.loads(data)["seq"])
        tally.events += 1
        if self.last_seq is not None:
            if seq <= self.last_seq:
                tally.duplicates += 1
                return
            tally.lost += seq - self.last_seq - 1
        self.last_seq = seq
        if event_id:
            self.last_id = event_id


@dataclass(frozen=True)
class Route:
    """Where a session connects: the server itself or a proxy in front of it."""

    name: str
    http_port: int
    ws_port: int


class Pace:
    """A session's reading behaviour: when to pause, and for how long."""

    def __init__(self, behaviour: str, rng: random.Random, freeze: tuple[float, float]) -> None:
        self.behaviour = behaviour
        self._rng = rng
        self._freeze_at = trio.current_time() + rng.uniform(1.0, 10.0)
        self._freeze = freeze

    async def after_read(self) -> None:
        """Pause as the behaviour says (always a checkpoint)."""
        if self.behaviour == "slow":
            await trio.sleep(self._rng.uniform(0.05, 0.5))
        elif self.behaviour == "frozen" and trio.current_time() >= self._freeze_at:
            self._freeze_at = float("inf")  # once per session
            await trio.sleep(self._rng.uniform(*self._freeze))
        else:
            await trio.lowlevel.checkpoint()


async def _open_small_buffer_stream(port: int) -> trio.SocketStream:
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SMALL_RECEIVE_BUFFER)
        await sock.connect(("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


async def sse_session(route: Route, topic: str, track: Track, tally: Tally, pace: Pace) -> str:
    """One SSE connection (HTTP/1.0: the body is the raw stream up to EOF); how it ended."""
    resume = f"Last-Event-ID: {track.last_id}\r\n" if track.last_id else ""
    request = (
        f"GET /sse/{topic} HTTP/1.0\r\nHost: soak\r\nAccept: text/event-stream\r\n{resume}\r\n"
    )
    stream = await _open_small_buffer_stream(route.http_port)
    async with stream:
        await stream.send_all(request.encode("latin-1"))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await stream.receive_some(4096)
            if not chunk or len(head) > _MAX_HEAD:
                return "closed before the response"
            head += chunk
        head, _, body = head.partition(b"\r\n\r\n")
        status = head.split(b" ", 2)[1]
        if status != b"200":
            return f"http {status.decode()}"
        decoder = SSEDecoder(track.last_id or "")
        while True:  # the head may have come alone: body can be empty here
            for event in decoder.feed(body):
                track.receive(tally, event.event or "message", event.data, event.id)
            await pace.after_read()
            try:
                body = await stream.receive_some(4096)
            except trio.BrokenResourceError:
                return "reset by peer"
            if not body:
                return "server closed"


async def ws_session(route: Route, topic: str, track: Track, tally: Tally, pace: Pace) -> str:
    """One WebSocket connection to ``/ws/{topic}``. Returns how it ended."""
    query = f"?last_event_id={track.last_id}" if track.last_id else ""
    url = f"ws://127.0.0.1:{route.ws_port}/ws/{topic}{query}"
    try:
        async with trio_websocket.open_websocket_url(
            url, message_queue_size=4, connect_timeout=10, disconnect_timeout=2
        ) as ws:
            while True:
                message = json.loads(await ws.get_message())
                track.receive(tally, message["event"], message["data"], message["id"])
                await pace.after_read()
    except trio_websocket.ConnectionClosed as exc:
        ending = f"close {exc.reason.code if exc.reason else 'none'}"
    except trio_websocket.HandshakeError as exc:
        ending = f"handshake {type(exc).__name__}"
    await trio.lowlevel.checkpoint()
    return ending


@dataclass
class Plan:
    """How the clients misbehave: session lengths, freeze lengths, routes."""

    mean_session: float
    freeze: tuple[float, float]
    routes: list[Route]
    seed: int = 1


async def _counted(session: Awaitable[str]) -> str:
    try:
        return await session
    except Exception as exc:  # a soak counts failures of every kind, and goes on
        await trio.lowlevel.checkpoint()
        return f"error {type(exc).__name__}"


async def run_client(kind: str, index: int, topic: str, plan: Plan, tally: Tally) -> None:
    """Sessions one after another until cancelled; each resumes where the last one ended."""
    rng = random.Random(plan.seed * 100_003 + index + (0 if kind == "sse" else 50_000))
    session = sse_session if kind == "sse" else ws_session
    track = Track()
    while True:
        route = rng.choice(plan.routes)
        pace = Pace(rng.choice(BEHAVIOURS), rng, plan.freeze)
        tally.sessions += 1
        tally.resumes += track.last_id is not None
        tally.behaviours[pace.behaviour] += 1
        tally.routes[route.name] += 1
        ending = "client disconnect"
        with trio.move_on_after(rng.expovariate(1.0 / plan.mean_session)):
            ending = await _counted(session(route, topic, track, tally, pace))
        tally.endings[ending] += 1
        tally.endings_by_route[f"{route.name} {pace.behaviour}: {ending}"] += 1
        await trio.sleep(rng.uniform(0.1, 1.0))  # a reconnect delay, as a browser has


def topic_of(index: int, topics: int) -> str:
    """The topic client ``index`` follows (spread evenly)."""
    return f"soak{index % topics}"
