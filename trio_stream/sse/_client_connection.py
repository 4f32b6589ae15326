"""One connection of an event source: the request, the response checks, the read loop.

The reconnect policy lives in ``_client_reconnect``; this module makes one
attempt and reports how it ended (or raises what made it fail).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

import httpx
import trio

from ..protocol import Event, SSEDecodeError, SSEDecoder
from ._client_errors import SSEResponseError, SSEServerError

__all__ = ["Ending", "RequestSpec", "SourceState", "State", "run_connection"]

logger = logging.getLogger("trio_stream.sse")

State = Literal["connecting", "open", "reconnecting", "closed"]

_EVENT_STREAM = "text/event-stream"

# Upper bound on the chunks that may still sit in httpcore's buffers when we
# unwind a response (see unwind_httpx_stream); h11 buffers one read (<= 64 KiB).
_UNWIND_STEPS = 65536


class Ending(Enum):
    """How a connection ended without an error."""

    CLOSED = "closed"  # the server ended the body: the spec says reconnect
    NO_CONTENT = "no-content"  # 204: the server says stop for good


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """What every attempt sends (``Last-Event-ID`` is added per attempt)."""

    method: str
    url: str
    headers: httpx.Headers
    json: Any
    timeout: httpx.Timeout
    max_line_length: int
    max_event_size: int


@dataclass(slots=True)
class SourceState:
    """Mutable counters of one event source, shared by its task and its statistics."""

    state: State = "connecting"
    resume_id: str = ""  # the last event ID string: sent as Last-Event-ID
    retry: int | None = None  # the server's latest ``retry:`` (milliseconds)
    attempts: int = 0
    connections: int = 0
    reconnects: int = 0
    events: int = 0
    bytes_received: int = 0
    failures: int = 0  # failed attempts in a row (the first body bytes reset it)
    status_code: int | None = None
    last_delay: float | None = None
    last_error: Exception | None = None


async def run_connection(
    client: httpx.AsyncClient,
    spec: RequestSpec,
    state: SourceState,
    send: trio.MemorySendChannel[Event],
    on_data: Callable[[], None],
) -> Ending:
    """Make one request and pump its events into ``send`` until the body ends.

    ``on_data()`` is called once, when the first bytes of the body arrive.

    Blocks on ``send`` when the consumer is slow (the body is then not read,
    so TCP flow control slows the server). Raises :class:`SSEResponseError`
    (fatal), :class:`SSEServerError` (5xx), ``httpx.TransportError`` (network)
    or :class:`SSEDecodeError` (a limit broken). Cancellation is clean: the
    response and httpx's generators are closed before it propagates.
    """
    headers = list(spec.headers.raw)
    if state.resume_id:
        # Raw bytes: the standard sends the id UTF-8 encoded; httpx encodes str as ASCII.
        headers.append((b"Last-Event-ID", state.resume_id.encode("utf-8")))
    state.attempts += 1
    async with client.stream(
        spec.method,
        spec.url,
        headers=headers,
        json=spec.json,
        timeout=spec.timeout,
        follow_redirects=True,
    ) as response:
        state.status_code = response.status_code
        if response.status_code == 204:
            logger.info("SSE stream %s answered 204 No Content: not reconnecting", spec.url)
            return Ending.NO_CONTENT
        _check_response(response, spec.url)
        state.connections += 1
        state.state = "open"
        decoder = SSEDecoder(
            state.resume_id,
            max_line_length=spec.max_line_length,
            max_event_size=spec.max_event_size,
        )
        got_data = False
        chunks = response.aiter_bytes()
        try:
            async for chunk in chunks:
                if not got_data:
                    got_data = True
                    on_data()
                state.bytes_received += len(chunk)
                failure: SSEDecodeError | None = None
                try:
                    events = decoder.feed(chunk)
                except SSEDecodeError as exc:  # hand over the events before it first
                    events, failure = exc.events, exc
                for event in events:
                    await send.send(event)
                    state.events += 1
                    # Per event: if we stop half-way through a chunk, the next
                    # connection resumes after the last event handed over.
                    state.resume_id = event.id or ""
                if failure is not None:
                    logger.warning("SSE stream %s broke a decoder limit: %s", spec.url, failure)
                    raise failure
                # An id-only block moves the last event ID without an event.
                state.resume_id = decoder.last_event_id
                if decoder.retry is not None:
                    state.retry = decoder.retry
        finally:
            # A zero timeout: the shielded scope is cancelled on entry, so the
            # unwinding can neither block nor be interrupted by our caller.
            with trio.move_on_after(0, shield=True):
                await unwind_httpx_stream(chunks)
    return Ending.CLOSED


def _check_response(response: httpx.Response, url: str) -> None:
    status = response.status_code
    content_type = response.headers.get("content-type", "")
    if 500 <= status <= 599:
        raise SSEServerError(f"{url} answered {status}", url=url, status_code=status)
    if status != 200:
        logger.warning("SSE stream %s answered %d: giving up", url, status)
        raise SSEResponseError(
            f"{url} answered {status}, not 200",
            url=url,
            status_code=status,
            content_type=content_type,
        )
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type != _EVENT_STREAM:
        logger.warning("SSE stream %s answered Content-Type %r: giving up", url, content_type)
        raise SSEResponseError(
            f"{url} answered Content-Type {content_type!r}, not {_EVENT_STREAM}",
            url=url,
            status_code=status,
            content_type=content_type,
        )


async def unwind_httpx_stream(chunks: AsyncIterator[bytes]) -> None:
    """Finish a suspended httpx body iterator (call it in an already-cancelled scope)."""
    # Call it in an already-cancelled scope. httpx 0.28 streams a body through
    # a chain of nested async generators; one left suspended at its `yield`
    # (we stopped in our loop body: an error, or a cancellation that landed on
    # `send`) makes trio warn when it is garbage collected, and `aclose()`
    # would close only the outermost one. Resuming it here raises Cancelled at
    # the innermost await, so every generator in the chain unwinds.
    for _ in range(_UNWIND_STEPS):
        try:
            await chunks.__anext__()
        except Exception:  # StopAsyncIteration: finished already; or its own error
            break
    await trio.lowlevel.checkpoint()  # (raises the scope's Cancelled)
