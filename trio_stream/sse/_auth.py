"""`Authenticated`: an ASGI middleware admitting only requests its hook accepts."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ._asgi import ASGIApp, Receive, Scope, Send, send_plain
from ._request import RequestRejected

__all__ = ["Authenticated", "AuthenticationStatistics"]

logger = logging.getLogger("trio_stream.sse")

Authenticate = Callable[[Scope], Awaitable[object | None]]


@dataclass(frozen=True, slots=True)
class AuthenticationStatistics:
    """A snapshot of an :class:`Authenticated`: requests ``admitted``, ``unauthenticated``
    (401), ``refused`` (the hook raised :class:`RequestRejected`) and ``failed`` (the
    hook itself raised: 500)."""

    admitted: int
    unauthenticated: int
    refused: int
    failed: int


class Authenticated:
    """Pass an HTTP request to ``app`` only when ``authenticate(scope)`` names who sent it.

    ``authenticate`` is an async function of the request's ASGI scope (its
    headers, cookies, query string, and the ``path_params`` a :class:`Router`
    set, so it can decide per topic). It returns an identity — any object but
    ``None`` — which ``app`` finds in ``scope["identity"]``; ``None`` means
    "not authenticated": **401** with ``WWW-Authenticate: <scheme>``. To refuse
    an authenticated client (a topic it may not read: **403**), raise
    :class:`RequestRejected`; its short reason is what the client sees. Any
    other exception from the hook is logged with its traceback and answered
    **500** ``internal error``: no exception text reaches the client. Every
    refusal is logged on ``trio_stream.sse``.

    Browsers' ``EventSource`` cannot set headers: authenticate it with a
    cookie (same site) or a short-lived token in the query string, never a
    long-lived secret in a URL that ends up in logs. Wrap each route that
    needs it — the SSE endpoint, the publish endpoint — inside the
    :class:`Router`, so the hook sees the route's ``path_params``. Lifespan
    messages pass straight through, the hook runs once per request before
    anything is streamed, and a cancelled hook simply ends the request.
    """

    def __init__(
        self, app: ASGIApp, authenticate: Authenticate, *, scheme: str = "Bearer"
    ) -> None:
        if any(c in scheme for c in "\r\n\0"):
            raise ValueError("scheme may not contain CR, LF or NUL")
        self.app = app
        self.authenticate = authenticate
        self._challenge = [(b"www-authenticate", scheme.encode("latin-1"))]
        self._counts = {"admitted": 0, "unauthenticated": 0, "refused": 0, "failed": 0}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            identity = await self.authenticate(scope)
        except RequestRejected as rejection:
            self._counts["refused"] += 1
            await rejection.respond(scope, send)
            return
        except Exception:
            self._counts["failed"] += 1
            logger.exception("the authentication hook failed for %s", scope.get("path", "?"))
            await send_plain(send, 500, "internal error")
            return
        if identity is None:
            self._counts["unauthenticated"] += 1
            logger.warning(
                "rejected %s %s: 401 not authenticated",
                scope.get("method", "?"),
                scope.get("path", "?"),
            )
            await send_plain(send, 401, "not authenticated", headers=self._challenge)
            return
        self._counts["admitted"] += 1
        await self.app({**scope, "identity": identity}, receive, send)

    def statistics(self) -> AuthenticationStatistics:
        """How many requests were admitted and refused, by reason."""
        return AuthenticationStatistics(**self._counts)
