"""Errors of the WebSocket adapter (all derive from :class:`TrioStreamError`)."""

from __future__ import annotations

from ..protocol import TrioStreamError

__all__ = [
    "HandshakeRejected",
    "WebSocketClosed",
    "WebSocketError",
    "WebSocketRejected",
]


class WebSocketError(TrioStreamError):
    """Base class of the WebSocket adapter's errors."""


class WebSocketClosed(WebSocketError):
    """The connection is closed (or closing): nothing more can be sent on it.

    ``code`` is the WebSocket close code (1006 when the TCP connection was lost
    without a close frame) and ``reason`` the close reason text ("" if none).
    Raised by ``send`` after the connection closed, and by a client that stopped
    for good because the server closed with a code that says "do not reconnect".
    """

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"WebSocket closed with code {code}" + (f": {reason}" if reason else ""))
        self.code = code
        self.reason = reason


class HandshakeRejected(WebSocketError):
    """Raise this from an ``authenticate`` hook to refuse a connection.

    The server answers the opening handshake with ``status_code`` (401 by
    default, 403 for "known but not allowed") and a short ``body``; nothing of
    the exception's message reaches the client, it is only logged.
    """

    def __init__(self, status_code: int = 401, message: str = "", *, body: bytes = b"") -> None:
        if not 400 <= status_code <= 599:
            raise ValueError("a handshake rejection needs a 4xx or 5xx status")
        super().__init__(message or f"handshake rejected with {status_code}")
        self.status_code = status_code
        self.body = body


class WebSocketRejected(WebSocketError):
    """The server refused the client's opening handshake with an HTTP status.

    Raised by a client that gives up for good (401, 403, 404 ...); 408, 429 and
    5xx statuses are retried with backoff instead. ``status_code`` is the
    server's status.
    """

    def __init__(self, status_code: int) -> None:
        super().__init__(f"WebSocket handshake rejected with HTTP {status_code}")
        self.status_code = status_code
