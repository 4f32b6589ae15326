"""Topic events as WebSocket frames, encoded once per event for all subscribers."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from ..protocol import Event
from ._codec import Codec

__all__ = ["EventFrameCache", "event_message"]


def event_message(event: Event) -> dict[str, Any]:
    """The object sent for a topic event: ``{"id", "event", "data"}``.

    ``data`` is the event's data text exactly as SSE readers of the topic see
    it in ``data:`` (JSON stays JSON text for the client to parse), ``event``
    is ``"message"`` when the event has no type (what an SSE decoder reports),
    and ``id`` is the id the Hub assigned, the same one SSE readers see.
    """
    return {"id": event.id, "event": event.event or "message", "data": event.data}


class EventFrameCache:
    """Memoises the encoded frame of each :class:`Event` object for one codec.

    A topic event fanned out to N WebSocket subscribers is encoded once, not
    N times: the first subscriber to send it encodes it, the others reuse the
    frame. Keys are object identities, and the cache holds a reference to each
    event it keys, so an identity is never reused while its entry lives.

    ``capacity`` bounds the cache (least recently used entries go first); it
    only needs to cover the events in flight to subscribers at one time, so
    the default of 1024 is ample: a miss costs one extra encode, never a
    wrong frame.
    """

    def __init__(self, codec: Codec, capacity: int = 1024) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.codec = codec
        self.capacity = capacity
        self._frames: OrderedDict[int, tuple[Event, str | bytes]] = OrderedDict()
        self.encoded = 0  # encodes done (misses); a statistic for tests and metrics

    def frame(self, event: Event) -> str | bytes:
        """The frame for ``event``, encoded on first use."""
        key = id(event)
        entry = self._frames.get(key)
        if entry is not None:  # same object: the entry's reference pins the id
            self._frames.move_to_end(key)
            return entry[1]
        frame = self.codec.encode(event_message(event))
        self.encoded += 1
        self._frames[key] = (event, frame)
        if len(self._frames) > self.capacity:
            self._frames.popitem(last=False)
        return frame
