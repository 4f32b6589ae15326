"""Messages as WebSocket frames: topic events encoded once per event, for all subscribers.

The server writes its data frames itself (see ``_outbox``): a frame's bytes
are computed once, here, and the same ``bytes`` object is written to every
subscriber of a topic, so a fan-out to N connections costs one encode, not N.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from typing import Any

from ..protocol import Event
from ._codec import Codec

__all__ = ["EventFrameCache", "event_message", "wire_frame"]

_TEXT = 0x81  # FIN + opcode 1
_BINARY = 0x82  # FIN + opcode 2
_MEDIUM = struct.Struct("!BBH")
_LARGE = struct.Struct("!BBQ")


def wire_frame(message: str | bytes) -> bytes:
    """The bytes of ``message`` as one unfragmented server-to-client WebSocket frame.

    ``str`` becomes a text frame (UTF-8; ``UnicodeEncodeError`` for a lone
    surrogate, which no WebSocket peer may receive), ``bytes`` a binary frame.
    Unmasked and without extensions: byte for byte what wsproto writes for a
    server connection that negotiated none (the server never offers any).
    """
    if isinstance(message, str):
        payload, first = message.encode(), _TEXT
    else:
        payload, first = bytes(message), _BINARY
    size = len(payload)
    if size < 126:
        return bytes((first, size)) + payload
    if size < 65536:
        return _MEDIUM.pack(first, 126, size) + payload
    return _LARGE.pack(first, 127, size) + payload


def event_message(event: Event) -> dict[str, Any]:
    """The object sent for a topic event: ``{"id", "event", "data"}``.

    ``data`` is the event's data text exactly as SSE readers of the topic see
    it in ``data:`` (JSON stays JSON text for the client to parse), ``event``
    is ``"message"`` when the event has no type (what an SSE decoder reports),
    and ``id`` is the id the Hub assigned, the same one SSE readers see.
    """
    return {"id": event.id, "event": event.event or "message", "data": event.data}


class EventFrameCache:
    """Memoises the encoded message and frame bytes of each :class:`Event` for one codec.

    A topic event fanned out to N WebSocket subscribers is encoded once, not
    N times: the first use encodes it, later ones reuse the result. Keys are
    object identities, and the cache holds a reference to each event it keys,
    so an identity is never reused while its entry lives.

    ``capacity`` bounds the cache (least recently used entries go first); it
    only needs to cover the events in flight at one time, so the default of
    1024 is ample: a miss costs one extra encode, never a wrong frame.
    """

    def __init__(self, codec: Codec, capacity: int = 1024) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.codec = codec
        self.capacity = capacity
        self._entries: OrderedDict[int, tuple[Event, str | bytes, bytes]] = OrderedDict()
        self.encoded = 0  # encodes done (misses); a statistic for tests and metrics

    def _entry(self, event: Event) -> tuple[Event, str | bytes, bytes]:
        key = id(event)
        entry = self._entries.get(key)
        if entry is not None:  # same object: the entry's reference pins the id
            self._entries.move_to_end(key)
            return entry
        message = self.codec.encode(event_message(event))
        entry = (event, message, wire_frame(message))
        self.encoded += 1
        self._entries[key] = entry
        if len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
        return entry

    def frame(self, event: Event) -> str | bytes:
        """The codec's message for ``event`` (``str`` or ``bytes``), encoded on first use."""
        return self._entry(event)[1]

    def wire(self, event: Event) -> bytes:
        """The complete WebSocket frame for ``event`` (see :func:`wire_frame`), on first use."""
        return self._entry(event)[2]
