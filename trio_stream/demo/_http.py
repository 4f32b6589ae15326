"""Small HTTP pieces the demo's endpoints share: bodies, JSON, the token check, responses."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Iterable
from typing import Any

from ..llm._requests import send_json, send_json_error
from ..protocol import TrioStreamError
from ..sse._asgi import Receive, Scope, Send, header_value

__all__ = [
    "ClientGone",
    "DemoRequestError",
    "bearer_allowed",
    "read_body",
    "read_json_object",
    "send_bytes",
    "send_json",
    "send_json_error",
    "token_matches",
]

logger = logging.getLogger("trio_stream.demo")


class DemoRequestError(TrioStreamError):
    """A request a demo endpoint refuses, answered with ``status`` and ``message``.

    ``message`` is a fixed phrase, safe to show the client (never exception text).
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message

    async def respond(self, scope: Scope, send: Send) -> None:
        """Log the refusal (on ``trio_stream.demo``) and send it as an OpenAI-style error."""
        logger.warning(
            "%s %s: %d %s", scope.get("method"), scope.get("path"), self.status, self.message
        )
        headers = [(b"www-authenticate", b"Bearer")] if self.status == 401 else []
        await send_json(send, self.status, _error_body(self.message, self.status), headers)


class ClientGone(TrioStreamError):
    """The client disconnected before its request body arrived (nothing to answer)."""


def _error_body(message: str, status: int) -> dict[str, Any]:
    # The error types of send_json_error (trio_stream.llm), which logs on its own logger.
    kind = "invalid_request_error" if status < 500 else "upstream_error"
    return {"error": {"message": message, "type": kind}}


async def read_body(receive: Receive, max_size: int) -> bytes:
    """The whole request body; 413 past ``max_size`` bytes; :class:`ClientGone` on disconnect."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone("client disconnected")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > max_size:
            raise DemoRequestError(413, "request body too large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def read_json_object(
    receive: Receive, max_size: int, *, allow_empty: bool = False
) -> dict[str, Any]:
    """The request body as a JSON object (``{}`` for an empty body when ``allow_empty``).

    400 when it is not JSON or not an object, 413 when too large.
    """
    raw = await read_body(receive, max_size)
    if allow_empty and not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # deeply nested JSON is bad input too
        raise DemoRequestError(400, "request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise DemoRequestError(400, "request body must be a JSON object")
    return body


def token_matches(expected: str | None, given: str | None) -> bool:
    """True when no token is required, or ``given`` equals it (constant-time comparison)."""
    if expected is None:
        return True
    if given is None:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def bearer_allowed(scope: Scope, token: str | None) -> bool:
    """True when the request may write: no token is required, or it sends ``Bearer <token>``."""
    if token is None:
        return True
    raw = header_value(scope, b"authorization")
    if raw is None:
        return False
    scheme, _, credentials = raw.decode("latin-1").partition(" ")
    return scheme.lower() == "bearer" and token_matches(token, credentials.strip())


async def send_bytes(
    scope: Scope,
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Send a complete response (headers only for ``HEAD``)."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode("latin-1")),
                (b"content-length", b"%d" % len(body)),
                *headers,
            ],
        }
    )
    payload = b"" if scope.get("method") == "HEAD" else body
    await send({"type": "http.response.body", "body": payload, "more_body": False})
