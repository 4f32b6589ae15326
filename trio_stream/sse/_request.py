"""Reading what an SSE request asks for: the last event id, compression, rejections."""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl

from ..protocol import TrioStreamError
from ._asgi import Scope, Send, header_value, send_plain

__all__ = ["MAX_LAST_EVENT_ID_LENGTH", "RequestRejected", "accepts_gzip", "last_event_id_from"]

logger = logging.getLogger("trio_stream.sse")

MAX_LAST_EVENT_ID_LENGTH = 256
"""Longest ``Last-Event-ID`` accepted: ids are short opaque tokens; more is abuse."""

# Visible ASCII and space: what an id can be once it has crossed an HTTP header.
_ID_CHARS = re.compile(r"[\x20-\x7e]*")
_MAX_QUERY_FIELDS = 32


class RequestRejected(TrioStreamError):
    """A request the endpoint refuses: answered with ``status`` and the short ``reason``.

    ``reason`` is safe to show a client (a fixed phrase, never exception text).
    ``retry_after`` (seconds) adds a ``Retry-After`` header: for a 503 whose
    cause is temporary (a broker outage), telling clients when to come back.
    """

    def __init__(self, status: int, reason: str, *, retry_after: int | None = None) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.retry_after = retry_after

    async def respond(self, scope: Scope, send: Send) -> None:
        """Log the rejection and send the plain-text error response."""
        logger.warning(
            "rejected %s %s: %d %s",
            scope.get("method", "?"),
            scope.get("path", "?"),
            self.status,
            self.reason,
        )
        headers = [] if self.retry_after is None else [(b"retry-after", b"%d" % self.retry_after)]
        await send_plain(send, self.status, self.reason, headers=headers)


def _checked_id(value: str, where: str, max_length: int) -> str | None:
    if len(value) > max_length:
        raise RequestRejected(400, f"{where} too long")
    if not _ID_CHARS.fullmatch(value):
        raise RequestRejected(400, f"{where} has invalid characters")
    return value or None


def last_event_id_from(scope: Scope, *, max_length: int = MAX_LAST_EVENT_ID_LENGTH) -> str | None:
    """The id an SSE client wants to resume after, or None for a fresh start.

    Taken from the ``Last-Event-ID`` header (what ``EventSource`` sends on a
    reconnect), else from a ``last_event_id`` query parameter (for the first
    connection, which cannot set headers). An empty value means None. Raises
    :class:`RequestRejected` (400) for a value longer than ``max_length``
    (default :data:`MAX_LAST_EVENT_ID_LENGTH`; a multi-topic stream's ids are
    longer, see :func:`max_topics_event_id_length`) or with characters
    outside visible ASCII.
    """
    raw = header_value(scope, b"last-event-id")
    if raw is not None:
        return _checked_id(raw.decode("latin-1").strip(), "Last-Event-ID", max_length)
    query = scope.get("query_string", b"")
    if b"last_event_id" not in query:
        return None
    try:
        fields = parse_qsl(
            query.decode("latin-1"), keep_blank_values=True, max_num_fields=_MAX_QUERY_FIELDS
        )
    except ValueError:
        raise RequestRejected(400, "malformed query string") from None
    for name, value in fields:
        if name == "last_event_id":
            return _checked_id(value, "last_event_id", max_length)
    return None


def accepts_gzip(scope: Scope) -> bool:
    """True when the request's ``Accept-Encoding`` allows gzip (``q`` > 0, or ``*``)."""
    raw = header_value(scope, b"accept-encoding")
    if raw is None:
        return False
    wildcard = False
    for item in raw.decode("latin-1").lower().split(","):
        coding, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if coding.strip() in {"gzip", "x-gzip"}:
            return quality > 0
        if coding.strip() == "*":
            wildcard = quality > 0
    return wildcard
