"""``GET /sse?topic=a&topic=b``: several Hub topics on one SSE response, for ``/metrics``."""

from __future__ import annotations

from ..core import Hub, Overflow
from ..sse import DEFAULT_MAX_TOPICS, EventStream, RequestRejected
from ..sse._asgi import Receive, Scope, Send
from ..sse._endpoint import _query_topics
from ..sse._multi import check_topics
from ._streams import TopicStreams

__all__ = ["MultiTopicStreams"]


class MultiTopicStreams:
    """The ASGI endpoint for ``/sse?topic=...``: the page follows all its jobs on one connection.

    The same rules as :func:`trio_stream.sse.hub_topics_endpoint`: the
    topics are the ``topic`` query parameters, in order; none, more than
    ``max_topics`` (default 32), duplicates or an invalid name get 400. Each
    response is an :meth:`EventStream.from_hub_topics` resuming every topic
    from the client's multi-topic ``Last-Event-ID`` (or ``last_event_id``
    query parameter); a topic it cannot resume gets the ``reset`` event
    (:data:`trio_stream.sse.TOPIC_RESET_EVENT`) with that topic's index in
    its id. Per topic, a queue of ``streams.capacity`` events under
    ``Overflow.DISCONNECT`` (a slow page is dropped and resumes). Responses
    count in ``streams``' statistics (open, started, events, queues);
    resumes are not counted per topic. ``max_lifetime``: as
    :class:`TopicStreams`'.
    """

    def __init__(
        self,
        hub: Hub,
        streams: TopicStreams,
        *,
        retry: int | None = 1000,
        keepalive_interval: float = 15.0,
        max_lifetime: float | None = None,
        max_topics: int = DEFAULT_MAX_TOPICS,
    ) -> None:
        self._hub = hub
        self._streams = streams
        self._retry = retry
        self._keepalive_interval = keepalive_interval
        self._max_lifetime = max_lifetime
        self.max_topics = max_topics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ``GET /sse?topic=...`` request."""
        try:
            names = check_topics(_query_topics(scope, "topic", self.max_topics), self.max_topics)
        except RequestRejected as rejection:
            await rejection.respond(scope, send)
            return
        stream = EventStream.from_hub_topics(
            self._hub,
            names,
            capacity=self._streams.capacity,
            overflow=Overflow.DISCONNECT,
            max_topics=self.max_topics,
            retry=self._retry,
            keepalive_interval=self._keepalive_interval,
            max_lifetime=self._max_lifetime,
        )
        await self._streams.serve_counted(stream, scope, receive, send)
