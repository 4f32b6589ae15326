"""Helpers for the demo tests: the demo on port 0, SSE and WebSocket clients, /metrics."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from trio_stream.demo import DemoConfig, DemoServer, serve_demo
from trio_stream.protocol import Event
from trio_stream.testing import SSEReader, open_sse_reader
from trio_stream.testing._groups import raise_single

SAFETY = 30.0
"""Seconds: a bound on each test's waits, never a wait for something to happen."""

FAST: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 0,
    "ws_port": 0,
    "ticker_interval": 0.05,
    "sse_retry": 200,
    "job_steps": 5,
    "job_duration": 0.5,
    "graceful_timeout": 1.0,
}
"""Demo settings for tests: free ports, a fast ticker, quick reconnects and jobs."""

_SERIES = re.compile(r"^(?P<series>[a-z_]+(?:\{[^}]*\})?) (?P<value>\S+)$")


@asynccontextmanager
async def running_demo(**options: Any) -> AsyncIterator[DemoServer]:
    """``serve_demo`` with :data:`FAST` settings (``options`` override them) for a block."""
    config = fast_config(**options)
    try:
        async with trio.open_nursery() as nursery:
            server: DemoServer = await nursery.start(serve_demo, config)
            try:
                yield server
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise_single(group)


def fast_config(**options: Any) -> DemoConfig:
    """A :class:`DemoConfig` with :data:`FAST` settings (``options`` override them)."""
    return DemoConfig(**{**FAST, **options})


async def serve_demo_in(  # noqa: ASYNC114, ASYNC128  task_status goes to serve_demo
    scope: trio.CancelScope,
    config: DemoConfig,
    *,
    task_status: trio.TaskStatus[DemoServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """``serve_demo`` inside ``scope``: cancelling it stops this one server (a restart)."""
    with scope:
        await serve_demo(config, task_status=task_status)


@asynccontextmanager
async def demo_client(server: DemoServer, **options: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client with the demo's base URL."""
    async with httpx.AsyncClient(base_url=server.url, timeout=SAFETY, **options) as client:
        yield client


@asynccontextmanager
async def sse_stream(
    client: httpx.AsyncClient, path: str, headers: dict[str, str] | None = None
) -> AsyncIterator[SSEReader]:
    """``GET path`` as an event stream (200 checked), read with :class:`SSEReader`."""
    async with client.stream("GET", path, headers=headers) as response:
        assert response.status_code == 200, response.status_code
        async with open_sse_reader(response) as reader:
            yield reader


@asynccontextmanager
async def ws_connect(
    server: DemoServer, path: str = "/ws/chat", *, origin: str | None = None
) -> AsyncIterator[WebSocketConnection]:
    """A trio-websocket client to the demo's WebSocket port (``origin`` as a browser sends)."""
    headers = [(b"origin", origin.encode())] if origin is not None else None
    async with open_websocket_url(server.ws_url + path, extra_headers=headers) as ws:
        yield ws


async def ws_receive(ws: WebSocketConnection, event: str | None = None) -> dict[str, Any]:
    """The next message (of type ``event`` when given: others are skipped), decoded."""
    while True:
        message: dict[str, Any] = json.loads(await ws.get_message())
        if event is None or message["event"] == event:
            return message


async def publish(client: httpx.AsyncClient, topic: str, data: Any, **extra: Any) -> str:
    """Publish through ``POST /api/topics/{topic}``; return the event id."""
    response = await client.post(f"/api/topics/{topic}", json={"data": data, **extra})
    assert response.status_code == 201, response.text
    event_id: str = response.json()["id"]
    return event_id


def metrics(text: str) -> dict[str, float]:
    """A Prometheus text exposition as ``{'name{labels}': value}`` (comments skipped)."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SERIES.match(line)
        assert match is not None, f"not a sample line: {line!r}"
        values[match["series"]] = float(match["value"])
    return values


async def read_metrics(client: httpx.AsyncClient) -> dict[str, float]:
    """``GET /metrics``, parsed with :func:`metrics`."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return metrics(response.text)


def data_of(event: Event) -> Any:
    """The JSON data of an event."""
    return json.loads(event.data)
