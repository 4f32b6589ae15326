"""``GET /sse/{topic}``: Hub topics as SSE responses, counted for ``/metrics``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

from ..core import Hub, HubClosedError, InvalidTopicError, Overflow, Subscription, validate_topic
from ..protocol import Event, TrioStreamError
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


class _CountingHub:
    """Stands in for the Hub in :meth:`EventStream.from_hub` to see each subscription's
    ``recovered`` flag (the response does not expose it), and to answer 503 when the
    broker is unavailable (the client's EventSource retries)."""

    def __init__(self, hub: Hub, streams: TopicStreams) -> None:
        self._hub = hub
        self._streams = streams

    @asynccontextmanager
    async def subscribe(self, topic: str, **options: Any) -> AsyncIterator[Subscription]:
        async with AsyncExitStack() as stack:
            try:
                subscription = await stack.enter_async_context(
                    self._hub.subscribe(topic, **options)
                )
            except (HubClosedError, InvalidTopicError):
                raise  # EventStream answers these itself (503, 400)
            except TrioStreamError as exc:  # the broker (Redis) is unavailable
                logger.warning("subscribing to %s failed: %s", topic, exc)
                raise RequestRejected(503, "temporarily unavailable; retry") from None
            if options.get("last_event_id"):
                self._streams.count_resume(recovered=subscription.recovered)
            yield subscription


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
    which browsers retry.
    """

    def __init__(
        self,
        hub: Hub,
        *,
        retry: int | None = 1000,
        keepalive_interval: float = 15.0,
        capacity: int = 256,
    ) -> None:
        self._hub = hub
        # from_hub only calls .subscribe(); the stand-in provides exactly that.
        self._counting = cast(Hub, _CountingHub(hub, self))
        self._retry = retry
        self._keepalive_interval = keepalive_interval
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
            self._counting,
            topic,
            capacity=self.capacity,
            overflow=Overflow.DISCONNECT,
            reset_event=RESET_EVENT,
            retry=self._retry,
            keepalive_interval=self._keepalive_interval,
        )
        self._open.add(stream)
        self._started += 1
        try:
            await stream(scope, receive, send)
        finally:
            self._open.discard(stream)
            self._finished_events += stream.statistics().events

    def count_resume(self, *, recovered: bool) -> None:
        """Count a request that asked to resume (and whether history had its id)."""
        self._resumes += 1
        if not recovered:
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
