"""A streaming in-memory ASGI transport for httpx (httpx's own buffers whole bodies)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import unquote

import httpx
import trio

from ..sse._asgi import ASGIApp, Message
from ._groups import raise_single

__all__ = ["StreamingASGITransport", "open_asgi_client"]

logger = logging.getLogger("trio_stream.testing")


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, receive: trio.MemoryReceiveChannel[Message], gone: trio.Event) -> None:
        self._receive = receive
        self._gone = gone

        self._done = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        # An iterator object, not an async generator: nothing to finalise later.
        await trio.lowlevel.checkpoint()
        while not self._done:
            try:
                message = await self._receive.receive()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                break
            if message["type"] != "http.response.body":
                continue
            self._done = not message.get("more_body", False)
            body: bytes = message.get("body", b"")
            if body:
                return body
        raise StopAsyncIteration

    async def aclose(self) -> None:
        # Closing the response is what a client disconnect looks like to the app.
        await trio.lowlevel.checkpoint()
        self._gone.set()
        self._receive.close()


class StreamingASGITransport(httpx.AsyncBaseTransport):
    """An httpx transport that runs an ASGI app in ``nursery`` and streams its body.

    Every ``http.response.body`` message reaches the client as it is sent,
    through a memory channel of ``capacity`` messages (default 16): an app
    that outruns its reader waits in ``send``, as over a socket. Closing the
    response (leaving ``client.stream(...)``) delivers ``http.disconnect``;
    like Hypercorn, ``send`` after that does not raise. The request body is
    read in full first. An exception before the response starts is raised
    from the request; after it, it is logged and the body just ends.
    Works with ``autojump_clock`` (no sockets, no threads).
    """

    def __init__(
        self,
        app: ASGIApp,
        nursery: trio.Nursery,
        *,
        capacity: int = 16,
        client: tuple[str, int] = ("127.0.0.1", 12345),
    ) -> None:
        self._app = app
        self._nursery = nursery
        self._capacity = capacity
        self._client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Start the app for ``request``; return once it has sent ``http.response.start``."""
        body = b"".join([chunk async for chunk in request.stream])  # type: ignore[union-attr]
        raw_path, _, query = request.url.raw_path.partition(b"?")
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": request.url.scheme,
            "path": unquote(raw_path.decode("ascii")),
            "raw_path": raw_path,
            "query_string": query,
            "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "client": self._client,
            "server": (request.url.host, request.url.port or 80),
            "extensions": {},
            "state": {},
        }
        to_client, from_app = trio.open_memory_channel[Message](self._capacity)
        gone = trio.Event()
        request_sent = False
        failure: list[BaseException] = []

        async def receive() -> Message:
            nonlocal request_sent
            await trio.lowlevel.checkpoint()
            if not request_sent:
                request_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            await trio.lowlevel.checkpoint()
            if gone.is_set():
                return
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await to_client.send(message)  # fails when the client closed the response

        async def run_app() -> None:
            await trio.lowlevel.checkpoint()
            with to_client:
                try:
                    await self._app(scope, receive, send)
                except Exception as exc:
                    logger.exception("ASGI app failed")
                    failure.append(exc)

        self._nursery.start_soon(run_app)
        try:
            start = await from_app.receive()
        except trio.EndOfChannel:
            gone.set()
            if failure:
                raise failure[0] from None
            raise RuntimeError("the ASGI app returned without sending a response") from None
        return httpx.Response(
            status_code=start["status"],
            headers=list(start.get("headers", [])),
            stream=_ResponseStream(from_app, gone),
            request=request,
        )


@asynccontextmanager
async def open_asgi_client(
    app: ASGIApp, *, base_url: str = "http://testserver", capacity: int = 16, **client_options: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """An ``httpx.AsyncClient`` talking to ``app`` in memory through a streaming transport.

    The app's tasks run in a nursery owned by this context manager; leaving it
    cancels whatever is still running. See :class:`StreamingASGITransport`.
    """
    try:
        async with trio.open_nursery() as nursery:
            transport = StreamingASGITransport(app, nursery, capacity=capacity)
            try:
                async with httpx.AsyncClient(
                    transport=transport, base_url=base_url, **client_options
                ) as client:
                    yield client
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise_single(group)
