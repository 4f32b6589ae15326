"""ASGI plumbing shared by the SSE server modules: types, header lookup, small responses."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

__all__ = [
    "ASGIApp",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "handle_lifespan",
    "header_value",
    "send_json",
    "send_plain",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger("trio_stream.sse")


def header_value(scope: Scope, name: bytes) -> bytes | None:
    """The value of request header ``name`` (lower-case bytes), or None; first one wins."""
    headers: Iterable[tuple[bytes, bytes]] = scope.get("headers", ())
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


async def send_plain(
    send: Send, status: int, text: str, *, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Send a complete short ``text/plain`` response (error pages: never exception text)."""
    await _send_whole(send, status, b"text/plain; charset=utf-8", text.encode(), headers)


async def send_json(
    send: Send, status: int, obj: object, headers: Iterable[tuple[bytes, bytes]] | None = None
) -> None:
    """Send a complete JSON response (compact, UTF-8)."""
    body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    await _send_whole(send, status, b"application/json", body, headers or ())


async def _send_whole(
    send: Send,
    status: int,
    content_type: bytes,
    body: bytes,
    headers: Iterable[tuple[bytes, bytes]],
) -> None:
    start_headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    start_headers.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": start_headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def handle_lifespan(receive: Receive, send: Send) -> None:
    """Answer the ASGI ``lifespan`` protocol: acknowledge startup and shutdown, then return.

    For apps with nothing to set up; returns after ``lifespan.shutdown``.
    """
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
