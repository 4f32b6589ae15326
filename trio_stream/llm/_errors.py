"""Errors of the LLM layer: what can go wrong with an upstream model server."""

from __future__ import annotations

from ..protocol import TrioStreamError

__all__ = [
    "UpstreamConnectionError",
    "UpstreamError",
    "UpstreamHTTPError",
    "UpstreamProtocolError",
    "UpstreamStreamError",
]


class UpstreamError(TrioStreamError):
    """The upstream model server failed to produce an answer (base class).

    The message is for logs: it may carry the upstream's own text. Relays send
    clients a fixed, sanitised message instead.
    """


class UpstreamHTTPError(UpstreamError):
    """The upstream answered with a non-200 status (``status_code``) instead of a stream."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(f"upstream answered {status_code}: {message}")
        self.status_code = status_code


class UpstreamConnectionError(UpstreamError):
    """The upstream could not be reached, timed out, or dropped the connection mid-answer."""


class UpstreamProtocolError(UpstreamError):
    """The upstream's stream was malformed, of the wrong content type, or cut off
    before the model finished (no ``finish_reason``)."""


class UpstreamStreamError(UpstreamError):
    """The upstream reported an error inside its 200 stream (an ``error`` object)."""

    def __init__(self, message: str, type: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.type = type
        self.code = code
