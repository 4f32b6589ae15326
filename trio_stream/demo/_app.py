"""`DemoApp`: the demo's HTTP surface (DESIGN §11) as one ASGI application."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from ..core import Hub, HubClosedError, InvalidTopicError, validate_topic
from ..protocol import Event, TrioStreamError
from ..sse import CORS, ConnectionLimits, RateLimit, Route, Router
from ..sse._asgi import ASGIApp, Receive, Scope, Send
from ..websocket import WebSocketServer
from ._answers import Answers
from ._config import DemoConfig
from ._http import (
    ClientGone,
    DemoRequestError,
    bearer_allowed,
    read_json_object,
    send_bytes,
    send_json,
)
from ._jobs import JobRunner, JobsBusy, check_job
from ._metrics import CONTENT_TYPE, MetricsSnapshot, render_metrics
from ._multi_streams import MultiTopicStreams
from ._rooms import Rooms
from ._static import StaticFiles
from ._streams import TopicStreams
from ._ticker import TICKER_TOPIC

__all__ = ["DemoApp"]

logger = logging.getLogger("trio_stream.demo")

_EVENT_TYPE_LIMIT = 64
# What a page on another origin may send: the resume id, a JSON body, the token.
_CORS_HEADERS = ("Last-Event-ID", "Content-Type", "Authorization")


class DemoApp:
    """The demo's ASGI application: page, SSE topics, publishing, LLM answers, jobs, metrics.

    =========================  ==================================================
    ``GET /``                  the page (``/static/{name}``: its scripts, styles)
    ``GET /sse/{topic}``       a topic as SSE, resuming from ``Last-Event-ID``
    ``GET /sse?topic=a&...``   several topics on one SSE stream (multi-topic ids)
    ``POST /api/topics/{t}``   publish ``{"data": ..., "event": optional}`` → 201
    ``POST /v1/chat/...``      OpenAI-compatible answers; ``GET /v1/models``
    ``POST /api/chat``         the same answer as an AI SDK UI message stream
    ``POST /api/jobs``         start a job → 201 ``{"id", "topic", "last_event_id"}``
    ``GET /healthz``           ``200 ok``
    ``GET /metrics``           Prometheus text
    =========================  ==================================================

    Writes need the token when ``config.token`` is set (401 otherwise). Bad
    input gets 400 (413 for a body over ``config.max_body_size``), unknown
    paths 404, wrong methods 405, a full job runner 503. The page and the
    WebSocket numbers of ``/metrics`` need :meth:`attach_websockets`.

    Limits: the SSE routes share one :class:`ConnectionLimits`
    (``sse_limits``: ``config.max_sse_streams`` in all, 503;
    ``config.max_sse_per_client`` per address, 429); publishing has a
    :class:`RateLimit` per address (``publish_limit``: 429). Both answer
    with ``Retry-After``. With ``config.cors_origins`` the whole surface is
    wrapped in :class:`CORS` for those origins; SSE streams end after
    ``config.max_stream_lifetime`` when set (browsers resume seamlessly).
    """

    def __init__(
        self,
        hub: Hub,
        config: DemoConfig,
        *,
        answers: Answers,
        jobs: JobRunner,
        rooms: Rooms,
    ) -> None:
        self.hub = hub
        self.config = config
        self.answers = answers
        self.jobs = jobs
        self.rooms = rooms
        self.streams = TopicStreams(
            hub,
            retry=config.sse_retry,
            keepalive_interval=config.keepalive_interval,
            max_lifetime=config.max_stream_lifetime,
        )
        self.topic_streams = MultiTopicStreams(
            hub,
            self.streams,
            retry=config.sse_retry,
            keepalive_interval=config.keepalive_interval,
            max_lifetime=config.max_stream_lifetime,
        )
        self.sse_limits = ConnectionLimits(
            Router([Route("/sse", self.topic_streams), Route("/sse/{topic}", self.streams)]),
            max_connections=config.max_sse_streams,
            max_per_client=config.max_sse_per_client,
        )
        self.publish_limit = RateLimit(
            self.publish, rate=config.publish_rate, burst=config.publish_burst
        )
        self.websockets: WebSocketServer | None = None
        self.static = StaticFiles()
        self.router = Router()
        add = self.router.add
        add("/", self.static.page)
        add("/static/{name}", self.static.asset)
        add("/sse", self.sse_limits)
        add("/sse/{topic}", self.sse_limits)
        add("/api/topics/{topic}", self.publish_limit, methods=["POST"])
        add("/api/jobs", self.start_job, methods=["POST"])
        add("/healthz", self.healthz)
        add("/metrics", self.metrics)
        self.router.routes.extend(answers.routes())
        self.cors: CORS | None = None
        self._app: ASGIApp = self.router
        if config.cors_origins:
            self.cors = CORS(
                self.router, allow_origins=config.cors_origins, allow_headers=_CORS_HEADERS
            )
            self._app = self.cors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch one ASGI call (``lifespan`` is acknowledged)."""
        await self._app(scope, receive, send)

    def attach_websockets(self, server: WebSocketServer) -> None:
        """Point the page at ``server``'s port and report its statistics in ``/metrics``.

        Until then the page answers 503: it cannot work without the WebSocket port.
        """
        self.websockets = server
        self.static.configure(
            {
                "wsPort": server.port,
                "tokenRequired": self.config.token_required,
                "tickerTopic": TICKER_TOPIC,
                "tickerInterval": self.config.ticker_interval,
            }
        )

    # -- endpoints -------------------------------------------------------------------

    async def publish(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /api/topics/{topic}``: publish one event → ``201 {"id": ...}``."""

        async def publish_event() -> dict[str, Any]:
            topic = _topic(scope)
            event = _event_from(await read_json_object(receive, self.config.max_body_size))
            try:
                published = await self.hub.publish(topic, event)
            except HubClosedError:
                raise DemoRequestError(503, "server shutting down") from None
            return {"id": published.id}

        await self._create(scope, send, "publishing", publish_event)

    async def start_job(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /api/jobs``: start a job (body optional: ``{"steps", "duration"}``)."""

        async def start() -> dict[str, Any]:
            body = await read_json_object(receive, self.config.max_body_size, allow_empty=True)
            try:
                steps, duration = check_job(
                    body.get("steps", self.jobs.default_steps),
                    body.get("duration", self.jobs.default_duration),
                )
                job = await self.jobs.start(steps, duration)
            except ValueError as exc:  # check_job's messages are fixed, safe phrases
                raise DemoRequestError(400, str(exc)) from None
            except JobsBusy:
                raise DemoRequestError(503, "too many jobs running; try again later") from None
            except (HubClosedError, RuntimeError):
                raise DemoRequestError(503, "server shutting down") from None
            return {"id": job.id, "topic": job.topic, "last_event_id": job.first_event_id}

        await self._create(scope, send, "starting a job", start)

    async def _create(
        self,
        scope: Scope,
        send: Send,
        what: str,
        create: Callable[[], Awaitable[dict[str, Any]]],
    ) -> None:
        """A write endpoint: check the token, ``create()``, answer ``201`` with its reply.

        Refusals (:class:`DemoRequestError`) get their status; a broker outage
        (any other library error) a 503 and a log line naming ``what`` failed;
        a client gone before its body arrived, nothing.
        """
        try:
            self._check_token(scope)
            try:
                reply = await create()
            except (DemoRequestError, ClientGone):
                raise
            except TrioStreamError as exc:  # the broker (Redis) is unavailable
                logger.warning("%s on %s failed: %s", what, scope.get("path", "?"), exc)
                raise DemoRequestError(503, "temporarily unavailable; retry") from None
        except DemoRequestError as refusal:
            await refusal.respond(scope, send)
            return
        except ClientGone:
            await trio.lowlevel.checkpoint()
            return
        await send_json(send, 201, reply)

    async def healthz(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET /healthz``: ``200 ok``."""
        await send_bytes(scope, send, 200, b"ok", "text/plain; charset=utf-8")

    async def metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET /metrics``: Prometheus text exposition of every part's statistics."""
        body = render_metrics(self.snapshot()).encode()
        await send_bytes(scope, send, 200, body, CONTENT_TYPE, [(b"cache-control", b"no-cache")])

    def snapshot(self) -> MetricsSnapshot:
        """The statistics of every part, now (what ``/metrics`` renders)."""
        ws = self.websockets
        return MetricsSnapshot(
            hub=self.hub.statistics(),
            sse=self.streams.statistics(),
            websocket=ws.statistics() if ws is not None else None,
            websocket_queues=tuple(p.statistics().outbound for p in ws.peers) if ws else (),
            rooms=self.rooms.statistics(),
            jobs=self.jobs.statistics(),
            answers=self.answers.statistics(),
            sse_limits=self.sse_limits.statistics(),
            publish_limit=self.publish_limit.statistics(),
        )

    def _check_token(self, scope: Scope) -> None:
        if not bearer_allowed(scope, self.config.token):
            raise DemoRequestError(401, "a valid bearer token is required")


def _topic(scope: Scope) -> str:
    try:
        return validate_topic(scope.get("path_params", {}).get("topic", ""))
    except InvalidTopicError:
        raise DemoRequestError(400, "invalid topic") from None


def _event_from(body: dict[str, Any]) -> Event:
    if "data" not in body:
        raise DemoRequestError(400, "the body needs a 'data' field")
    kind = body.get("event")
    if kind is not None and (not isinstance(kind, str) or len(kind) > _EVENT_TYPE_LIMIT):
        raise DemoRequestError(400, "'event' must be a string of at most 64 characters")
    data = body["data"]
    try:
        if isinstance(data, str):
            return Event(data, event=kind)
        return Event.json(data, event=kind, ensure_ascii=False)
    except ValueError:  # CR/LF in the event type
        raise DemoRequestError(400, "'event' may not contain line breaks") from None
