"""``GET /sse/{topic}``: Hub topics as SSE responses, counted for ``/metrics``."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..core import Hub, InvalidTopicError, Overflow, Subscription, validate_topic
from ..protocol import Event
from ..sse import EventStream, RequestRejected
from ..sse._asgi import Receive, Scope, Send

__all__ = ["RESET_EVENT", "SSEStatistics", "TopicStreams"]

logger = logging.getLogger("trio_stream.demo")

RESET_EVENT = Event('{"reason": "history does not reach back to your last event id"}', "reset")
"""Sent first to a client whose ``Last-Event-ID`` is unknown (a restart, or history that
moved on): the page throws its state away and starts over from live events."""


@dataclass(frozen=True, slots=True)
class SSEStatistics:
    """A snapshot of the demo's SSE responses.

    ``open`` responses streaming now (``started`` in total); ``events`` sent
    (finished responses included); ``resumes`` requests that asked to resume
    from an id, ``resets`` of them that got :data:`RESET_EVENT` instead;
    ``queued`` events waiting in the open responses' queues now, ``queued_max``
    the fullest queue, out of ``capacity`` per response.
    """

    open: int
    started: int
    events: int
    resumes: int
    resets: int
    queued: int
    queued_max: int
    capacity: int


class TopicStreams:
    """The ASGI endpoint for routes like ``/sse/{topic}``, with statistics.

    Each request gets an :meth:`EventStream.from_hub` response for the topic
    in its path: it resumes after the client's ``Last-Event-ID`` (or the
    ``last_event_id`` query parameter), sends :data:`RESET_EVENT` first when
    that id is no longer in history, and sends ``retry:`` so browsers
    reconnect after ``retry`` milliseconds. Each subscriber has a queue of
    ``capacity`` events under ``Overflow.DISCONNECT``: a reader that falls
    that far behind is dropped and resumes from history when it reconnects.
    An invalid topic name gets 400; an unavailable broker (Redis down) 503,
    which browsers retry. With ``max_lifetime`` (seconds) each stream ends
    cleanly after its own randomised lifetime and the browser resumes.
    """

    def __init__(
        self,
        hub: Hub,
        *,
        retry: int | None = 1000,
        keepalive_interval: float = 15.0,
        max_lifetime: float | None = None,
        capacity: int = 256,
    ) -> None:
        self._hub = hub
        self._retry = retry
        self._keepalive_interval = keepalive_interval
        self._max_lifetime = max_lifetime
        self.capacity = capacity
        self._open: set[EventStream] = set()
        self._started = 0
        self._finished_events = 0
        self._resumes = 0
        self._resets = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ``GET /sse/{topic}`` request."""
        topic = scope.get("path_params", {}).get("topic", "")
        try:
            validate_topic(topic)
        except InvalidTopicError:
            await RequestRejected(400, "invalid topic").respond(scope, send)
            return
        stream = EventStream.from_hub(
            self._hub,
            topic,
            capacity=self.capacity,
            overflow=Overflow.DISCONNECT,
            reset_event=RESET_EVENT,
            on_resume=self._count_resume,
            retry=self._retry,
            keepalive_interval=self._keepalive_interval,
            max_lifetime=self._max_lifetime,
        )
        await self.serve_counted(stream, scope, receive, send)

    async def serve_counted(
        self, stream: EventStream, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Serve ``stream`` for one request, counted in :meth:`statistics`."""
        self._open.add(stream)
        self._started += 1
        try:
            await stream(scope, receive, send)
        finally:
            self._open.discard(stream)
            self._finished_events += stream.statistics().events

    def _count_resume(self, subscription: Subscription) -> None:
        # A request that asked to resume, and whether history still had its id.
        self._resumes += 1
        if not subscription.recovered:
            self._resets += 1

    def statistics(self) -> SSEStatistics:
        """An :class:`SSEStatistics` snapshot (no checkpoint)."""
        live = [stream.statistics() for stream in self._open]
        streaming = [stats for stats in live if stats.streaming]
        return SSEStatistics(
            open=len(streaming),
            started=self._started,
            events=self._finished_events + sum(stats.events for stats in live),
            resumes=self._resumes,
            resets=self._resets,
            queued=sum(stats.queued for stats in streaming),
            queued_max=max((stats.queued for stats in streaming), default=0),
            capacity=self.capacity,
        )
