"""`hub_endpoint`: an ASGI app streaming the Hub topic named in the request path."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from ..core import InvalidTopicError, validate_topic
from ._asgi import ASGIApp, Receive, Scope, Send, handle_lifespan
from ._multi import DEFAULT_MAX_TOPICS, check_topics
from ._request import RequestRejected
from ._response import EventStream

if TYPE_CHECKING:
    from ..core import Hub

__all__ = ["hub_endpoint", "hub_topics_endpoint"]

logger = logging.getLogger("trio_stream.sse")


def hub_endpoint(
    hub: Hub,
    *,
    topics: Collection[str] | Callable[[str], bool] | None = None,
    path_param: str = "topic",
    **options: Any,
) -> ASGIApp:
    """An ASGI app for routes like ``/sse/{topic}``: stream that topic of ``hub``.

    The topic comes from ``scope["path_params"][path_param]`` (set by
    :class:`Router`). An invalid topic name gets 400; with ``topics`` (an
    allow-list, or a predicate) a topic outside it gets 404. Each response is
    an :meth:`EventStream.from_hub` with ``options`` (``capacity``,
    ``overflow``, ``reset_event``, ``keepalive_interval``, ``max_lifetime``
    ...), resuming from the client's ``Last-Event-ID``. With
    ``max_lifetime`` each stream ends cleanly after its own randomised
    lifetime and the client resumes with no gap (see :class:`EventStream`).
    """
    allowed: Callable[[str], bool] | None = (
        topics if topics is None or callable(topics) else frozenset(topics).__contains__
    )

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await handle_lifespan(receive, send)
            return
        topic = scope.get("path_params", {}).get(path_param, "")
        try:
            try:
                validate_topic(topic)
            except InvalidTopicError:
                raise RequestRejected(400, "invalid topic") from None
            if allowed is not None and not allowed(topic):
                raise RequestRejected(404, "unknown topic")
        except RequestRejected as rejection:
            await rejection.respond(scope, send)
            return
        await EventStream.from_hub(hub, topic, **options)(scope, receive, send)

    return endpoint


def _query_topics(scope: Scope, param: str, max_topics: int) -> list[str]:
    query: bytes = scope.get("query_string", b"")
    try:
        # A few fields more than the cap: room for last_event_id and friends,
        # while a flood of parameters is refused before it is parsed.
        fields = parse_qsl(
            query.decode("latin-1"), keep_blank_values=True, max_num_fields=max_topics + 8
        )
    except ValueError:
        raise RequestRejected(400, "too many query parameters") from None
    return [value for name, value in fields if name == param]


def hub_topics_endpoint(
    hub: Hub,
    *,
    topics: Collection[str] | Callable[[str], bool] | None = None,
    max_topics: int = DEFAULT_MAX_TOPICS,
    query_param: str = "topic",
    **options: Any,
) -> ASGIApp:
    """An ASGI app for ``GET /sse?topic=a&topic=b``: several topics of ``hub`` on one stream.

    The topics are the ``query_param`` parameters, in order (the order the
    ids refer to: see :class:`TopicsEventId`). None, more than
    ``max_topics`` (default 32), duplicates or an invalid name get 400;
    with ``topics`` (an allow-list, or a predicate) a topic outside it gets
    404. Each response is an :meth:`EventStream.from_hub_topics` with
    ``options`` (``capacity``, ``overflow``, ``reset_event``, ``retry``,
    ``keepalive_interval``, ``max_lifetime`` ...), resuming every topic from
    the client's ``Last-Event-ID`` (or ``last_event_id`` query parameter).
    """
    if max_topics < 1:
        raise ValueError("max_topics must be >= 1")
    allowed: Callable[[str], bool] | None = (
        topics if topics is None or callable(topics) else frozenset(topics).__contains__
    )

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await handle_lifespan(receive, send)
            return
        try:
            names = check_topics(_query_topics(scope, query_param, max_topics), max_topics)
            if allowed is not None and not all(allowed(name) for name in names):
                raise RequestRejected(404, "unknown topic")
        except RequestRejected as rejection:
            await rejection.respond(scope, send)
            return
        stream = EventStream.from_hub_topics(hub, names, max_topics=max_topics, **options)
        await stream(scope, receive, send)

    return endpoint
