"""``ws://host:ws-port/ws/{topic}``: Hub topics as WebSocket rooms, with presence."""

from __future__ import annotations

import logging
import re
import secrets
from collections import Counter
from dataclasses import dataclass
from typing import Any

import trio

from ..core import Hub, HubClosedError, InvalidTopicError, validate_topic
from ..protocol import CloseCode, Event, TrioStreamError
from ..sse import MAX_LAST_EVENT_ID_LENGTH
from ..websocket import HandshakeRejected, HandshakeRequest, WebSocketClosed, WebSocketPeer
from ._http import token_matches

__all__ = ["PRESENCE_EVENT", "RoomStatistics", "RoomVisitor", "Rooms"]

logger = logging.getLogger("trio_stream.demo")

PRESENCE_EVENT = "presence"
"""Event type of the presence events a room publishes when someone joins or leaves."""

MAX_NAME_LENGTH = 32
_PATH = re.compile(r"/ws/([^/]+)")
_NAME_JUNK = re.compile(r"[^\w .\-']+")
_EVENT_NAME = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
# How long a leaving visitor's presence update may take (shielded, on the way out).
_LEAVE_GRACE = 1.0


@dataclass(frozen=True, slots=True)
class RoomVisitor:
    """Who a connection is (the ``authenticate`` hook's answer, as ``peer.identity``):
    the ``topic`` of its room, its display ``name``, whether it ``can_publish``."""

    topic: str
    name: str
    can_publish: bool


@dataclass(frozen=True, slots=True)
class RoomStatistics:
    """A snapshot of the rooms: ``visitors`` connected now, connections that asked to
    ``resume`` from an id and ``resets`` of them whose id was no longer in history,
    ``published`` messages."""

    visitors: int
    resumes: int
    resets: int
    published: int


def visitor_name(raw: str | None) -> str:
    """A display name from the ``name`` query parameter: cleaned up, at most 32
    characters; a random ``guest-xxxx`` when nothing usable is left."""
    name = " ".join(_NAME_JUNK.sub("", raw or "").split())[:MAX_NAME_LENGTH].strip()
    return name or f"guest-{secrets.token_hex(2)}"


class Rooms:
    """The WebSocket side of the demo: a handler, handshake hook and validator for
    :func:`serve_websockets`.

    A client connects to ``/ws/{topic}`` (other paths: 404; invalid topics:
    400) with optional query parameters ``name`` (shown to others),
    ``token`` and ``last_event_id`` (resume after it). It receives every event
    of the topic as ``{"id", "event", "data"}`` (its own messages included, with
    the id SSE readers see), starting with the ones it missed when it resumes;
    if its id is no longer in history it gets ``{"id": null, "event": "reset"}``
    first. Each message it sends, ``{"data": ...}`` with an optional
    ``"event"`` type, is published on the topic (data that is not a string is
    published as JSON text); anything else closes it with 1007.

    With a ``token``, a client that sends a wrong ``?token=`` is refused (401);
    one that sends none may read, and is closed with ``CloseCode.FORBIDDEN``
    if it tries to publish.

    Presence: when a visitor joins or leaves, a ``presence`` event
    ``{"users": [...], "joined" | "left": name}`` is published on the topic,
    listing the names connected to this process.
    """

    def __init__(self, hub: Hub, *, token: str | None = None) -> None:
        self.hub = hub
        self.token = token
        self._present: dict[str, Counter[str]] = {}
        self._resumes = 0
        self._resets = 0
        self._published = 0

    async def authenticate(self, request: HandshakeRequest) -> RoomVisitor:
        """The handshake hook: check path, topic and token; name the visitor."""
        await trio.lowlevel.checkpoint()
        match = _PATH.fullmatch(request.path)
        if match is None:
            raise HandshakeRejected(404, f"no WebSocket endpoint at {request.path[:80]!r}")
        try:
            topic = validate_topic(match[1])
        except InvalidTopicError:
            raise HandshakeRejected(400, "invalid topic") from None
        last_event_id = request.query.get("last_event_id", "")
        if len(last_event_id) > MAX_LAST_EVENT_ID_LENGTH:
            raise HandshakeRejected(400, "last_event_id too long")
        given = request.query.get("token")
        if given is not None and not token_matches(self.token, given):
            raise HandshakeRejected(401, "wrong token")
        can_publish = self.token is None or given is not None
        return RoomVisitor(topic, visitor_name(request.query.get("name")), can_publish)

    def validate(self, message: Any) -> Event:
        """Turn a client message into the :class:`Event` to publish (``ValueError``: 1007)."""
        if not isinstance(message, dict) or "data" not in message:
            raise ValueError('a message is a JSON object {"data": ...}')
        kind = message.get("event")
        if kind is not None and (not isinstance(kind, str) or not _EVENT_NAME.fullmatch(kind)):
            raise ValueError("'event' must be 1-64 characters of A-Z a-z 0-9 _ . : -")
        data = message["data"]
        if isinstance(data, str):
            return Event(data, event=kind)
        return Event.json(data, event=kind, ensure_ascii=False)

    async def handle(self, peer: WebSocketPeer) -> None:
        """Serve one connection: join, forward the topic, publish what it sends, leave.

        If the Hub closes (shutdown) the connection is closed with 1001, if the
        broker is unavailable with 1013: either way the client reconnects later.
        """
        try:
            await self._visit(peer, peer.identity)
        except HubClosedError:
            await peer.close(CloseCode.GOING_AWAY, "server shutting down")
        except WebSocketClosed:
            raise  # the connection is over: the server accounts for it
        except TrioStreamError as exc:  # the broker (Redis) is unavailable
            logger.warning("%s: closing, the broker failed: %s", peer.name, exc)
            await peer.close(CloseCode.TRY_AGAIN_LATER, "temporarily unavailable")

    async def _visit(self, peer: WebSocketPeer, visitor: RoomVisitor) -> None:
        last_event_id = peer.request.query.get("last_event_id") or None
        recovered = await peer.subscribe(visitor.topic, last_event_id=last_event_id)
        if last_event_id is not None:
            self._resumes += 1
            if not recovered:
                self._resets += 1
                await peer.send({"id": None, "event": "reset", "data": ""})
        users = self._present.setdefault(visitor.topic, Counter())
        users[visitor.name] += 1
        try:
            await self._announce(visitor, joined=True)
            async for event in peer:
                if not visitor.can_publish:
                    logger.info("%s: read-only visitor tried to publish", peer.name)
                    await peer.close(CloseCode.FORBIDDEN, "publishing needs the token")
                    return
                await peer.publish(visitor.topic, event)
                self._published += 1
        finally:
            users[visitor.name] -= 1
            if users[visitor.name] <= 0:
                del users[visitor.name]
            if not users:
                self._present.pop(visitor.topic, None)
            with trio.move_on_after(_LEAVE_GRACE) as scope:
                scope.shield = True
                await self._announce(visitor, joined=False)

    def present(self, topic: str) -> list[str]:
        """The names connected to ``topic`` in this process, sorted."""
        return sorted(self._present.get(topic, ()))

    async def _announce(self, visitor: RoomVisitor, *, joined: bool) -> None:
        change = "joined" if joined else "left"
        data = {"users": self.present(visitor.topic), change: visitor.name}
        try:
            await self.hub.publish(visitor.topic, Event.json(data, event=PRESENCE_EVENT))
        except TrioStreamError as exc:  # closed hub, unavailable broker: presence is best effort
            logger.info("presence update on %s not published: %s", visitor.topic, exc)
            await trio.lowlevel.checkpoint()

    def statistics(self) -> RoomStatistics:
        """A :class:`RoomStatistics` snapshot (no checkpoint)."""
        return RoomStatistics(
            visitors=sum(sum(users.values()) for users in self._present.values()),
            resumes=self._resumes,
            resets=self._resets,
            published=self._published,
        )
