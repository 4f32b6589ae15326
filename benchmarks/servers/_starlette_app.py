"""The sse-starlette + Starlette application, shared by the uvicorn and Hypercorn runners.

Written as its users write it: an ``EventSourceResponse`` over an async
generator reading the subscriber's bounded anyio memory stream. anyio makes the
same code run on asyncio (uvicorn) and on trio (Hypercorn's trio worker). The
publisher runs in a task group owned by the application's lifespan.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectSendStream
from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ._contract import QUEUE_CAPACITY, Broadcast, parse_broadcast_query

__all__ = ["create_app"]


class _State:
    def __init__(self) -> None:
        self.subscribers: set[MemoryObjectSendStream[str]] = set()
        self.task_group: anyio.abc.TaskGroup | None = None

    async def publish(self, spec: Broadcast) -> None:
        await anyio.lowlevel.checkpoint()  # even for an empty broadcast
        start = anyio.current_time()
        for seq in range(spec.count):
            if spec.rate:
                await anyio.sleep(max(0.0, spec.due(start, seq) - anyio.current_time()))
            data = spec.payload(seq)
            for stream in list(self.subscribers):
                try:
                    await stream.send(data)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    self.subscribers.discard(stream)


def create_app() -> Starlette:
    """Build the Starlette application serving the contract's SSE routes."""
    state = _State()

    async def sse(request: Request) -> Response:
        await anyio.lowlevel.checkpoint()
        send_stream, receive_stream = anyio.create_memory_object_stream[str](QUEUE_CAPACITY)
        state.subscribers.add(send_stream)

        # sse-starlette consumes an async generator: this is how its users write
        # it, so flake8-async's ASYNC900 / ASYNC119 are waived here.
        async def events() -> AsyncIterator[dict[str, Any]]:  # noqa: ASYNC900
            try:
                with receive_stream:
                    async for data in receive_stream:
                        yield {"data": data}  # noqa: ASYNC119
            finally:
                state.subscribers.discard(send_stream)
                send_stream.close()

        return EventSourceResponse(events(), sep="\n")

    async def subscribers(request: Request) -> Response:
        await anyio.lowlevel.checkpoint()
        return PlainTextResponse(str(len(state.subscribers)))

    async def broadcast(request: Request) -> Response:
        await anyio.lowlevel.checkpoint()
        try:
            spec = parse_broadcast_query(request.url.query)
        except ValueError:
            return PlainTextResponse("bad request", status_code=400)
        assert state.task_group is not None
        state.task_group.start_soon(state.publish, spec)
        return PlainTextResponse("started", status_code=202)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as task_group:
            state.task_group = task_group
            yield
            task_group.cancel_scope.cancel()

    return Starlette(
        routes=[
            Route("/sse", sse),
            Route("/control/subscribers", subscribers),
            Route("/control/broadcast", broadcast, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
