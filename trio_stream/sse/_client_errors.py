"""The errors of :func:`open_event_source`: a refused stream, a retry budget spent."""

from __future__ import annotations

from ..core import RetryBudgetExhausted
from ..protocol import TrioStreamError

__all__ = [
    "SSEClientError",
    "SSEResponseError",
    "SSERetriesExhaustedError",
    "SSEServerError",
    "SSEStreamEndedError",
]


class SSEClientError(TrioStreamError):
    """Base class of the errors of the SSE client (:func:`open_event_source`)."""


class SSEResponseError(SSEClientError):
    """The server answered with something that is not an event stream; never retried.

    Raised for a status other than 200, 204 and 5xx, or a 200 whose
    ``Content-Type`` is not ``text/event-stream`` (the WHATWG EventSource
    "fail the connection" cases). ``status_code`` and ``content_type`` say
    what came back; the response body is never read.
    """

    def __init__(self, message: str, *, url: str, status_code: int, content_type: str) -> None:
        super().__init__(message)
        self.url = url
        self.status_code = status_code
        self.content_type = content_type


class SSERetriesExhaustedError(SSEClientError, RetryBudgetExhausted):
    """The stream failed ``attempts`` times in a row: the retry budget is spent.

    Raised ``from`` the last failure: an ``httpx.TransportError`` (network,
    read timeout, a stream cut mid-event), an :class:`SSEServerError` (5xx;
    its status is also on ``status_code``, else None) or an
    :class:`SSEStreamEndedError`. The first bytes of a body reset the count.
    Also a core :class:`~trio_stream.core.RetryBudgetExhausted`.
    """

    def __init__(self, message: str, *, url: str, attempts: int, status_code: int | None) -> None:
        super().__init__(message, attempts=attempts)
        self.url = url
        self.status_code = status_code


class SSEServerError(SSEClientError):
    """The server answered 5xx: a transient failure, retried within the budget.

    Never raised to the caller by itself: it is the ``__cause__`` of
    :class:`SSERetriesExhaustedError` when the budget runs out on a 5xx.
    """

    def __init__(self, message: str, *, url: str, status_code: int) -> None:
        super().__init__(message)
        self.url = url
        self.status_code = status_code


class SSEStreamEndedError(SSEClientError):
    """The server ended the body of an event stream; the client reconnects.

    Never raised to the caller by itself: it is the ``__cause__`` of
    :class:`SSERetriesExhaustedError` when streams keep ending before
    sending a single byte.
    """

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url
