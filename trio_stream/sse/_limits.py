"""`ConnectionLimits`: an ASGI middleware capping open streams, globally and per client."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from ._asgi import ASGIApp, Receive, Scope, Send, send_plain

__all__ = [
    "DEFAULT_LIMIT_RETRY_AFTER",
    "DEFAULT_MAX_STREAMS",
    "DEFAULT_MAX_STREAMS_PER_CLIENT",
    "ClientKey",
    "ConnectionLimitStatistics",
    "ConnectionLimits",
    "client_address",
]

logger = logging.getLogger("trio_stream.sse")

DEFAULT_MAX_STREAMS = 10_000
"""Open streams per server: an idle stream costs a few KiB and a socket, so ten
thousand fit in well under a GiB and within common file-descriptor limits."""

DEFAULT_MAX_STREAMS_PER_CLIENT = 100
"""Open streams per client address: far more than one browser opens (six per
origin over HTTP/1.1), while still leaving room for many users behind one NAT."""

DEFAULT_LIMIT_RETRY_AFTER = 5
"""Seconds a refused client is told to wait (``Retry-After``) before trying again."""

ClientKey = Callable[[Scope], str]
"""Names the client a request counts against (default :func:`client_address`)."""


def client_address(scope: Scope) -> str:
    """The request's peer address (``scope["client"]``'s host), or ``"unknown"``.

    Behind a reverse proxy every request comes from the proxy: wrap the
    application in Hypercorn's ``ProxyFixMiddleware``, which puts the
    address the proxy forwards into ``scope["client"]`` (the deploying
    guide shows how), or give the middleware a ``key`` that reads it. Only
    from a proxy you trust: clients can set such headers themselves.
    """
    client = scope.get("client")
    if not client:
        return "unknown"
    return str(client[0])


@dataclass(frozen=True, slots=True)
class ConnectionLimitStatistics:
    """A snapshot of a :class:`ConnectionLimits`.

    ``open`` requests are running now (``peak`` the most at once), from
    ``clients`` distinct addresses; ``admitted`` in total; ``rejected_full``
    got 503 (the server was full), ``rejected_per_client`` 429 (their
    address had ``max_per_client`` open already).
    """

    open: int
    peak: int
    clients: int
    admitted: int
    rejected_full: int
    rejected_per_client: int
    max_connections: int
    max_per_client: int


class ConnectionLimits:
    """Wraps an ASGI app (streaming endpoints) and caps how many of its requests run at once.

    An HTTP request is counted from its arrival until the wrapped app
    returns: for a streaming response, as long as the stream is open. It is
    released in a ``finally``, so a client disconnect, a server shutdown or
    any cancellation frees its slot. With ``max_connections`` requests open
    (default :data:`DEFAULT_MAX_STREAMS`), a new one gets
    ``503 Service Unavailable``; with ``max_per_client`` open from the same
    client (default :data:`DEFAULT_MAX_STREAMS_PER_CLIENT`; the client is
    ``key(scope)``, by default :func:`client_address`), ``429 Too Many
    Requests``. Both carry ``Retry-After: retry_after`` (seconds), a short
    text body, and are logged at WARNING; other clients are unaffected.
    ``lifespan`` and ``websocket`` scopes pass through uncounted.

    Wrap only the long-lived endpoints (``Route("/sse/{topic}",
    ConnectionLimits(hub_endpoint(hub)))``): short requests wrapped too
    would hold a slot only briefly, but count all the same. Memory: one
    counter per address with an open request (at most
    ``max_connections``). No checkpoint of its own; not thread-safe (one
    trio run).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_connections: int = DEFAULT_MAX_STREAMS,
        max_per_client: int = DEFAULT_MAX_STREAMS_PER_CLIENT,
        key: ClientKey = client_address,
        retry_after: int = DEFAULT_LIMIT_RETRY_AFTER,
    ) -> None:
        if max_connections < 1 or max_per_client < 1:
            raise ValueError("max_connections and max_per_client must be >= 1")
        if retry_after < 0:
            raise ValueError("retry_after must be >= 0 seconds")
        self.app = app
        self.max_connections = max_connections
        self.max_per_client = max_per_client
        self._key = key
        self._retry_after = b"%d" % retry_after
        self._per_client: dict[str, int] = {}
        self._open = 0
        self._peak = 0
        self._admitted = 0
        self._rejected_full = 0
        self._rejected_per_client = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI call: admit and count it, or refuse it with 503 / 429."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = self._key(scope)
        current = self._per_client.get(client, 0)
        if self._open >= self.max_connections:
            self._rejected_full += 1
            await self._refuse(scope, send, client, 503, "server busy; retry later")
            return
        if current >= self.max_per_client:
            self._rejected_per_client += 1
            await self._refuse(scope, send, client, 429, "too many open streams; retry later")
            return
        self._per_client[client] = current + 1
        self._open += 1
        self._admitted += 1
        self._peak = max(self._peak, self._open)
        try:
            await self.app(scope, receive, send)
        finally:
            self._release(client)

    def _release(self, client: str) -> None:
        self._open -= 1
        remaining = self._per_client[client] - 1
        if remaining:
            self._per_client[client] = remaining
        else:
            del self._per_client[client]  # only addresses with an open request are kept

    async def _refuse(self, scope: Scope, send: Send, client: str, status: int, text: str) -> None:
        logger.warning(
            "refused %s %s from %s: %d (%d open, %d from this client)",
            scope.get("method", "?"),
            scope.get("path", "?"),
            client,
            status,
            self._open,
            self._per_client.get(client, 0),
        )
        await send_plain(send, status, text, headers=[(b"retry-after", self._retry_after)])

    def statistics(self) -> ConnectionLimitStatistics:
        """A :class:`ConnectionLimitStatistics` snapshot (no checkpoint)."""
        return ConnectionLimitStatistics(
            open=self._open,
            peak=self._peak,
            clients=len(self._per_client),
            admitted=self._admitted,
            rejected_full=self._rejected_full,
            rejected_per_client=self._rejected_per_client,
            max_connections=self.max_connections,
            max_per_client=self.max_per_client,
        )
