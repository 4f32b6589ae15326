"""The root of the library's exception tree, and the protocol layer's own errors.

Every error the library raises on purpose derives from :class:`TrioStreamError`,
so an application can catch them all in one place; each layer adds its own
subclasses next to the code that raises them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._event import Event

__all__ = ["SSEDecodeError", "TrioStreamError"]


class TrioStreamError(Exception):
    """Base class of every error raised on purpose by trio_stream."""


class SSEDecodeError(TrioStreamError, ValueError):
    """An incoming event stream broke one of the decoder's limits.

    Raised by :meth:`SSEDecoder.feed` when a line is longer than
    ``max_line_length`` or an event's data grows past ``max_event_size``: the
    peer is misbehaving (or hostile), and the connection should be dropped.

    ``events`` holds the events that the same ``feed()`` call completed before
    the limit was hit, in order, so that none is lost: the decoder's
    ``last_event_id`` already accounts for them.
    """

    def __init__(self, message: str, events: list[Event] | None = None) -> None:
        super().__init__(message)
        self.events: list[Event] = [] if events is None else events
