"""`serve_demo`: the whole demo (HTTP, WebSockets, ticker, jobs) under one nursery."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import partial

import trio

from ..core import Broker, Hub, open_hub
from ..core._groups import collapse_group, reraise
from ..llm import ChatUpstream, LocalTokenSource, OpenAIUpstream
from ..protocol import TrioStreamError
from ..sse import serve
from ..websocket import WebSocketServer, serve_websockets
from ._answers import Answers
from ._app import DemoApp
from ._config import DemoConfig
from ._jobs import JobRunner
from ._rooms import Rooms
from ._ticker import TICKER_TOPIC, run_ticker

__all__ = ["DemoError", "DemoServer", "page_origins", "serve_demo"]

logger = logging.getLogger("trio_stream.demo")

_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


class DemoError(TrioStreamError):
    """The demo failed in several parts at once; the ExceptionGroup is its ``__cause__``."""


@dataclass(frozen=True, slots=True)
class DemoServer:
    """A running demo, as ``await nursery.start(serve_demo, config)`` reports it.

    ``url`` is the HTTP base (``http://127.0.0.1:8000``: the page is ``url +
    "/"``), ``ws_url`` the WebSocket base (``ws://127.0.0.1:8001``: chat is
    ``ws_url + "/ws/chat"``); ``port`` and ``ws_port`` the bound ports. ``app``
    gives access to every part (``app.hub``, ``app.snapshot()``...).
    """

    url: str
    ws_url: str
    port: int
    ws_port: int
    config: DemoConfig
    app: DemoApp
    websockets: WebSocketServer

    @property
    def hub(self) -> Hub:
        """The demo's Hub."""
        return self.app.hub

    def urls(self) -> dict[str, str]:
        """What ``trio-stream demo`` prints: name → URL."""
        return {
            "page": self.url + "/",
            "events": f"{self.url}/sse/{TICKER_TOPIC}",
            "chat": self.ws_url + "/ws/chat",
            "llm": self.url + "/v1/chat/completions",
            "metrics": self.url + "/metrics",
        }


def _display_host(host: str) -> str:
    """The host to put in URLs: loopback for "every interface", IPv6 in brackets."""
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _is_loopback_or_any(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def page_origins(host: str, port: int, extra: tuple[str, ...] = ()) -> list[str]:
    """The origins the demo's page can have, for the WebSocket Origin allow-list.

    ``http://host:port``, plus the loopback names (``127.0.0.1``,
    ``localhost``, ``[::1]``) when ``host`` is loopback or unspecified, plus
    ``extra``. No wildcard: a page of any other site is refused (403), which
    is what stops cross-site WebSocket hijacking.
    """
    hosts = {_display_host(host)}
    if _is_loopback_or_any(host):
        hosts.update(_LOOPBACK_NAMES)
    return sorted({f"http://{name}:{port}" for name in hosts} | set(extra))


def _broker(config: DemoConfig) -> Broker | None:
    if config.redis is None:
        return None  # the Hub's embedded MemoryBroker
    from ..brokers import RedisBroker  # imported lazily: only --redis needs coredis

    return RedisBroker(config.redis)


@asynccontextmanager
async def _open_upstream(config: DemoConfig) -> AsyncIterator[ChatUpstream]:
    if config.upstream is None:
        await trio.lowlevel.checkpoint()
        yield LocalTokenSource()
        return
    async with OpenAIUpstream(
        config.upstream, model=config.model, api_key=config.upstream_api_key
    ) as upstream:
        yield upstream


async def serve_demo(  # noqa: ASYNC114  startable; flake8-async's list is the project's config
    config: DemoConfig | None = None,
    *,
    task_status: trio.TaskStatus[DemoServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the demo server until cancelled (DESIGN §11).

    Startable: ``server = await nursery.start(serve_demo, config)`` returns a
    :class:`DemoServer` once both ports listen, the ticker runs and the page
    can be served. It runs: the Hub (its broker's tasks with ``--redis``),
    the HTTP server (page, SSE, API, LLM relay, metrics) on ``config.port``,
    the WebSocket server on ``config.ws_port`` (Origin allow-list from
    :func:`page_origins`), the ticker and the job runner.

    Cancellation is a graceful shutdown: open SSE streams end cleanly,
    WebSockets close with 1001, other requests get ``config.graceful_timeout``
    seconds; then jobs and the Hub stop. A failure of one part (a port in use:
    ``OSError``; Redis unreachable: ``BrokerUnavailableError``) stops the rest
    and comes out as itself; several at once as a :class:`DemoError`.
    """
    config = config if config is not None else DemoConfig()
    await trio.lowlevel.checkpoint()
    try:
        async with AsyncExitStack() as stack:
            hub = await stack.enter_async_context(open_hub(_broker(config)))
            upstream = await stack.enter_async_context(_open_upstream(config))
            nursery = await stack.enter_async_context(trio.open_nursery())
            server = await _start_parts(nursery, hub, upstream, config)
            logger.info("demo serving on %s (WebSockets %s)", server.url, server.ws_url)
            task_status.started(server)
            await trio.sleep_forever()
    except BaseExceptionGroup as group:
        single = collapse_group(group)
        if single is None:
            raise DemoError("several parts of the demo failed") from group
        reraise(single)


async def _start_parts(
    nursery: trio.Nursery, hub: Hub, upstream: ChatUpstream, config: DemoConfig
) -> DemoServer:
    jobs = JobRunner(
        hub,
        max_jobs=config.max_jobs,
        default_steps=config.job_steps,
        default_duration=config.job_duration,
    )
    await nursery.start(jobs.run)
    rooms = Rooms(hub, token=config.token)
    answers = Answers(
        upstream,
        token=config.token,
        model=config.model,
        max_body_size=config.max_body_size,
        keepalive_interval=config.keepalive_interval,
    )
    app = DemoApp(hub, config, answers=answers, jobs=jobs, rooms=rooms)
    http_url: str = await nursery.start(
        partial(
            serve,
            app,
            host=config.host,
            port=config.port,
            graceful_timeout=config.graceful_timeout,
        )
    )
    port = int(http_url.rsplit(":", 1)[1])
    websockets: WebSocketServer = await nursery.start(
        partial(
            serve_websockets,
            rooms.handle,
            host=config.host,
            port=config.ws_port,
            hub=hub,
            authenticate=rooms.authenticate,
            validate=rooms.validate,
            allowed_origins=page_origins(config.host, port, config.allowed_origins),
            max_message_size=config.max_body_size,
            close_timeout=min(config.graceful_timeout, 5.0),
        )
    )
    app.attach_websockets(websockets)
    if config.ticker_interval > 0:
        await nursery.start(partial(run_ticker, hub, interval=config.ticker_interval))
    host = _display_host(config.host)
    return DemoServer(
        url=f"http://{host}:{port}",
        ws_url=f"ws://{host}:{websockets.port}",
        port=port,
        ws_port=websockets.port,
        config=config,
        app=app,
        websockets=websockets,
    )
