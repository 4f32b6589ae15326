"""The reconnect policy of an event source, on top of the core's ``reconnect_loop``."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import trio

from ..core import RetryBudgetExhausted, reconnect_loop
from ..protocol import Backoff, Event
from ._client_connection import Ending, RequestSpec, SourceState, run_connection
from ._client_errors import SSERetriesExhaustedError, SSEServerError, SSEStreamEndedError

__all__ = ["reconnect_forever"]

logger = logging.getLogger("trio_stream.sse")

# Transport errors that retrying cannot fix: our own request is at fault.
_FATAL_TRANSPORT_ERRORS = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)


def _retryable(error: Exception) -> bool:
    if isinstance(error, _FATAL_TRANSPORT_ERRORS):
        return False
    return isinstance(error, httpx.TransportError | SSEServerError | SSEStreamEndedError)


async def reconnect_forever(
    client: httpx.AsyncClient,
    spec: RequestSpec,
    state: SourceState,
    send: trio.MemorySendChannel[Event],
    *,
    backoff: Backoff,
    max_retries: int | None,
    reconnect_on_close: bool,
    on_reconnect: Callable[[], None],
) -> None:
    """Connect, pump events, and reconnect per the WHATWG rules until told to stop.

    Returns on a 204 answer (and, with ``reconnect_on_close=False``, when the
    server ends the body). Retries 5xx answers, network errors (a stream cut
    mid-event included) and bodies the server ended, after ``next(backoff)``
    seconds; the server's ``retry:`` is handed to ``backoff``, and the first
    bytes of a body reset it and the failure count. After ``max_retries``
    retries in a row it raises :class:`SSERetriesExhaustedError` ``from`` the
    last failure; fatal errors (:class:`SSEResponseError`, ``SSEDecodeError``,
    bad URLs) go through at once. Cancellation interrupts it anywhere.
    """
    applied_retry: int | None = None

    async def session(status: trio.TaskStatus[None]) -> None:
        nonlocal applied_retry

        def on_data() -> None:
            state.failures = 0
            status.started()  # the core loop resets the backoff and its count

        try:
            ending = await run_connection(client, spec, state, send, on_data)
        finally:
            if state.retry is not None and state.retry != applied_retry:
                backoff.set_server_retry(state.retry)
                applied_retry = state.retry
        if ending is Ending.CLOSED and reconnect_on_close:
            raise SSEStreamEndedError(f"{spec.url} ended the stream", url=spec.url)

    def on_retry(error: Exception, delay: float) -> None:
        state.failures += 1
        state.state = "reconnecting"
        state.reconnects += 1
        state.last_delay = delay
        state.last_error = error
        on_reconnect()

    try:
        await reconnect_loop(
            session,
            backoff=backoff,
            classify=_retryable,
            max_attempts=None if max_retries is None else max_retries + 1,
            on_retry=on_retry,
        )
    except RetryBudgetExhausted as exc:
        raise _exhausted(spec.url, exc) from exc.__cause__


def _exhausted(url: str, exc: RetryBudgetExhausted) -> SSERetriesExhaustedError:
    cause = exc.__cause__
    status = cause.status_code if isinstance(cause, SSEServerError) else None
    logger.warning(
        "SSE stream %s failed %d times in a row: giving up (%r)", url, exc.attempts, cause
    )
    return SSERetriesExhaustedError(
        f"{url} failed {exc.attempts} times in a row; last error: {cause}",
        url=url,
        attempts=exc.attempts,
        status_code=status,
    )
