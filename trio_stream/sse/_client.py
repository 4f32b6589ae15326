"""`open_event_source`: a reconnecting Server-Sent Events client on httpx."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

import httpx
import trio

from ..core._groups import collapse_group, reraise
from ..protocol import Backoff, Event, SSEDecoder
from ..protocol._decoder import DEFAULT_MAX_EVENT_SIZE, DEFAULT_MAX_LINE_LENGTH
from ._client_connection import RequestSpec, SourceState, State
from ._client_errors import SSEClientError
from ._client_reconnect import reconnect_forever

__all__ = [
    "DEFAULT_CAPACITY",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_READ_TIMEOUT",
    "EventSource",
    "EventSourceStatistics",
    "open_event_source",
]

logger = logging.getLogger("trio_stream.sse")

DEFAULT_CAPACITY = 64
"""Events decoded ahead of the consumer. Enough to absorb a burst from one
network read without stalling the reader, small enough that a slow consumer
stops the reads (and, through TCP, the server) after a few dozen events."""

DEFAULT_MAX_RETRIES = 8
"""Failed attempts in a row (5xx, network errors, empty answers) before giving up."""

DEFAULT_READ_TIMEOUT = 45.0
"""Seconds without a byte before a stream counts as dead and is reconnected:
three keepalives of a trio_stream server (one every 15 s by default)."""

DEFAULT_CONNECT_TIMEOUT = 10.0
"""Seconds to connect (and to write the request, and to wait for a pooled connection)."""

_CLIENT_CLOSE_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class EventSourceStatistics:
    """A snapshot of an :class:`EventSource`, for dashboards and "reconnecting..." banners.

    ``state`` is ``"connecting"`` (first attempt), ``"open"`` (a stream is
    being read), ``"reconnecting"`` (waiting for or making a new attempt) or
    ``"closed"`` (it ended: 204, the budget ran out, a fatal error, or the
    context exited). ``connections`` counts 200 event-stream answers,
    ``attempts`` requests made, ``reconnects`` reconnections scheduled,
    ``events`` events decoded, ``bytes_received`` body bytes read;
    ``failures`` is the current run of failed attempts (the first bytes of
    a body reset it), ``last_error`` the reason of the last reconnect
    (an :class:`SSEStreamEndedError` when the server ended the body) or the
    error that closed the source. ``retry`` is the server's last ``retry:``
    (milliseconds) and ``last_delay`` the last backoff wait (seconds).
    ``queued``/``capacity`` describe the buffer between reader and consumer.
    """

    url: str
    state: State
    attempts: int
    connections: int
    reconnects: int
    events: int
    bytes_received: int
    failures: int
    last_event_id: str
    retry: int | None
    last_delay: float | None
    status_code: int | None
    last_error: Exception | None
    queued: int
    capacity: int


class EventSource:
    """An open, reconnecting SSE stream: ``async for event in source`` yields :class:`Event`.

    Made by :func:`open_event_source`; valid inside its ``async with`` block.
    Iteration ends normally when the stream ends for good (a 204 answer, or
    the server closing the body with ``reconnect_on_close=False``) and raises
    the error that ended it otherwise (:class:`SSEResponseError`,
    :class:`SSERetriesExhaustedError`, ...), after every event received before
    it. Breaking out of the loop is safe (this is not a generator).
    """

    def __init__(
        self,
        url: str,
        receive: trio.MemoryReceiveChannel[Event],
        state: SourceState,
        last_event_id: str,
    ) -> None:
        self._url = url
        self._receive = receive
        self._state = state
        self._last_event_id = last_event_id
        self._error: Exception | None = None

    @property
    def url(self) -> str:
        """The URL this source reads."""
        return self._url

    @property
    def last_event_id(self) -> str:
        """The id of the last event handed to you ("" when none): persist it to resume later.

        Pass it as ``last_event_id=`` to a new :func:`open_event_source`.
        """
        return self._last_event_id

    @property
    def state(self) -> State:
        """``"connecting"``, ``"open"``, ``"reconnecting"`` or ``"closed"``."""
        return self._state.state

    def statistics(self) -> EventSourceStatistics:
        """Return a snapshot of the counters (see :class:`EventSourceStatistics`)."""
        state = self._state
        channel = self._receive.statistics()
        return EventSourceStatistics(
            url=self._url,
            state=state.state,
            attempts=state.attempts,
            connections=state.connections,
            reconnects=state.reconnects,
            events=state.events,
            bytes_received=state.bytes_received,
            failures=state.failures,
            last_event_id=self._last_event_id,
            retry=state.retry,
            last_delay=state.last_delay,
            status_code=state.status_code,
            last_error=state.last_error,
            queued=channel.current_buffer_used,
            capacity=int(channel.max_buffer_size),
        )

    def __aiter__(self) -> EventSource:
        return self

    async def __anext__(self) -> Event:
        """Wait for the next event (a checkpoint; cancelling it loses no event)."""
        try:
            event = await self._receive.receive()
        except trio.EndOfChannel:
            if self._error is not None:
                raise self._error from self._error.__cause__
            raise StopAsyncIteration from None
        self._last_event_id = event.id or ""  # decoded events always carry one
        return event

    async def _run(
        self,
        send: trio.MemorySendChannel[Event],
        client: httpx.AsyncClient,
        spec: RequestSpec,
        backoff: Backoff,
        max_retries: int | None,
        reconnect_on_close: bool,
        on_reconnect: Callable[[EventSourceStatistics], object] | None,
    ) -> None:
        # Every failure is handed to the consumer through the channel, after
        # the events before it: this task never raises into the nursery.
        def reconnecting() -> None:
            if on_reconnect is not None:
                on_reconnect(self.statistics())

        await trio.lowlevel.checkpoint()
        with send:
            try:
                await reconnect_forever(
                    client,
                    spec,
                    self._state,
                    send,
                    backoff=backoff,
                    max_retries=max_retries,
                    reconnect_on_close=reconnect_on_close,
                    on_reconnect=reconnecting,
                )
            except Exception as exc:
                self._error = self._state.last_error = exc
            finally:
                self._state.state = "closed"


@asynccontextmanager
async def open_event_source(
    url: str,
    *,
    method: str = "GET",
    json: Any = None,
    headers: Mapping[str, str] | None = None,
    last_event_id: str | None = None,
    client: httpx.AsyncClient | None = None,
    backoff: Backoff | None = None,
    capacity: int = DEFAULT_CAPACITY,
    max_retries: int | None = DEFAULT_MAX_RETRIES,
    reconnect_on_close: bool = True,
    on_reconnect: Callable[[EventSourceStatistics], object] | None = None,
    read_timeout: float | None = DEFAULT_READ_TIMEOUT,
    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
    max_line_length: int = DEFAULT_MAX_LINE_LENGTH,
    max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
) -> AsyncIterator[EventSource]:
    """Open a reconnecting SSE stream; yields an :class:`EventSource` to iterate.

    ::

        async with open_event_source(url) as source:
            async for event in source:
                print(event.event, event.id, event.data)

    Behaves like the browser's ``EventSource`` (WHATWG HTML 9.2) plus what
    LLM endpoints need: any ``method`` with a ``json`` body and ``headers``.
    Every request sends ``Accept: text/event-stream``, ``Cache-Control:
    no-cache`` and, once an id is known (or ``last_event_id`` was given),
    ``Last-Event-ID``. The stream is fed to :class:`SSEDecoder` from
    ``aiter_bytes()``. When the server ends the body, the source reconnects
    (unless ``reconnect_on_close=False``: one-shot requests such as an LLM
    answer); 5xx answers and network errors (read timeouts and streams cut
    mid-event included) are retried after a delay from ``backoff`` (default
    ``Backoff()``: exponential with jitter, set by the server's ``retry:``,
    reset by a connection that delivered data) up to ``max_retries`` failures
    in a row (None: forever), then iteration raises
    :class:`SSERetriesExhaustedError` ``from`` the last failure. A 204 ends
    the iteration normally; any other status, or a 200 that is not
    ``text/event-stream``, raises :class:`SSEResponseError` (with
    ``status_code``) at once. ``on_reconnect(statistics)`` is called before
    each wait, to show "reconnecting...". A ``backoff`` given here is used
    (and mutated) by this source only.

    Backpressure: the reader hands events over through a channel of
    ``capacity`` events (default :data:`DEFAULT_CAPACITY`); when it is full
    the reader stops reading the socket, so a slow consumer slows the server
    instead of filling memory. ``max_line_length`` / ``max_event_size`` bound
    the decoder (a stream breaking them fails with ``SSEDecodeError``).

    Timeouts: ``read_timeout`` (default :data:`DEFAULT_READ_TIMEOUT`) is the
    longest silence tolerated on an open stream before it is treated as a
    network failure and retried; ``connect_timeout`` bounds connecting,
    writing and pool waits. They apply per request, also on a given client.

    ``client``: an ``httpx.AsyncClient`` to use (connection pool, proxies,
    auth, TLS); it is left open. Without one, a client is created and closed
    on exit. Exiting the block (or cancelling it) stops the reader at once
    and closes the response; errors raised in the block propagate unchanged,
    never wrapped in an exception group.
    """
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0:
        raise ValueError("capacity must be an int >= 0 (a finite number of events)")
    if max_retries is not None and (isinstance(max_retries, bool) or max_retries < 0):
        raise ValueError("max_retries must be an int >= 0, or None to retry forever")
    request_headers = httpx.Headers({"Accept": "text/event-stream", "Cache-Control": "no-cache"})
    if headers is not None:
        request_headers.update(headers)
    # Last-Event-ID is ours to manage; one passed as a header seeds it.
    given_id = request_headers.pop("Last-Event-ID", None)
    resume_id = last_event_id if last_event_id is not None else given_id or ""
    if any(c in resume_id for c in "\0\r\n"):
        raise ValueError("last_event_id may not contain NUL, CR or LF")
    SSEDecoder(max_line_length=max_line_length, max_event_size=max_event_size)  # checks them
    spec = RequestSpec(
        method=method.upper(),
        url=url,
        headers=request_headers,
        json=json,
        timeout=httpx.Timeout(connect_timeout, read=read_timeout),
        max_line_length=max_line_length,
        max_event_size=max_event_size,
    )
    state = SourceState(resume_id=resume_id)
    send, receive = trio.open_memory_channel[Event](capacity)
    source = EventSource(url, receive, state, resume_id)
    own_client = client is None
    http = httpx.AsyncClient() if client is None else client
    try:
        with receive:
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(
                        source._run,
                        send,
                        http,
                        spec,
                        backoff if backoff is not None else Backoff(),
                        max_retries,
                        reconnect_on_close,
                        on_reconnect,
                    )
                    try:
                        yield source
                    finally:
                        nursery.cancel_scope.cancel()
            except BaseExceptionGroup as group:
                _raise_single(group)
    finally:
        state.state = "closed"
        if own_client:
            with trio.move_on_after(_CLIENT_CLOSE_TIMEOUT) as cleanup:
                cleanup.shield = True
                await http.aclose()


def _raise_single(group: BaseExceptionGroup[BaseException]) -> NoReturn:
    # The reader task raises nothing but Cancelled (its errors go through the
    # channel), so a group here holds what the caller's block raised, plus
    # Cancelled copies when an outer scope was cancelled: unwrap it.
    single = collapse_group(group)
    if single is None:  # pragma: no cover - the reader task never raises an error
        raise SSEClientError("the event source failed") from group
    reraise(single)
