"""`open_test_server`: an ASGI app on real Hypercorn at 127.0.0.1:0, with accounting."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import trio

from ..sse._asgi import ASGIApp, Receive, Scope, Send
from ..sse._serve import serve
from ._groups import raise_single

__all__ = ["RunningServer", "open_test_server"]

# /proc/net/tcp state codes that are not a live connection (LISTEN, TIME_WAIT).
_NOT_OPEN = {"0A", "06"}


class RunningServer:
    """A server started by :func:`open_test_server`: its URL and what it is doing.

    ``requests_started`` counts HTTP and WebSocket calls of the app,
    ``in_flight`` those not yet returned; :meth:`wait_idle` waits for the
    latter to reach zero, i.e. for every response's tasks to have finished.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, app: ASGIApp) -> None:
        self.url = ""
        self.port = 0
        self.requests_started = 0
        self.in_flight = 0
        self._app = app
        self._changed = trio.Event()

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The wrapped app Hypercorn runs: counts calls, passes everything through."""
        await trio.lowlevel.checkpoint()
        if scope["type"] == "lifespan":
            await self._app(scope, receive, send)
            return
        self.requests_started += 1
        self.in_flight += 1
        self._notify()
        try:
            await self._app(scope, receive, send)
        finally:
            self.in_flight -= 1
            self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_idle(self) -> None:
        """Wait until no app call is running (every response's nursery has exited).

        Waits forever if one never ends: bound it with ``trio.fail_after``.
        """
        await self.wait_in_flight(0)

    async def wait_in_flight(self, at_most: int) -> None:
        """Wait until at most ``at_most`` app calls are running."""
        await trio.lowlevel.checkpoint()
        while self.in_flight > at_most:
            await self._changed.wait()

    async def wait_requests_started(self, count: int) -> None:
        """Wait until the app has been called for at least ``count`` requests."""
        await trio.lowlevel.checkpoint()
        while self.requests_started < count:
            await self._changed.wait()

    def open_connections(self) -> int:
        """How many TCP connections the server side of this port holds open (Linux).

        Counts kernel sockets whose local port is the server's, in any state
        but LISTEN and TIME_WAIT: a connection left in CLOSE_WAIT (the client
        went, the server never closed) counts as a leak.
        """
        if not sys.platform.startswith("linux"):  # pragma: no cover
            raise NotImplementedError("open_connections() reads /proc/net/tcp (Linux)")
        count = 0
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            path = Path(table)
            if not path.exists():  # pragma: no cover - kernels without IPv6
                continue
            for line in path.read_text().splitlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == self.port and fields[3] not in _NOT_OPEN:
                    count += 1
        return count

    async def wait_connections_closed(self, *, poll_interval: float = 0.01) -> None:
        """Wait until :meth:`open_connections` is zero.

        The kernel offers no event for this, so it polls every
        ``poll_interval`` seconds; bound it with ``trio.fail_after``.
        """
        await trio.lowlevel.checkpoint()
        while self.open_connections():  # noqa: ASYNC110  the kernel's socket table has no event
            await trio.sleep(poll_interval)


@asynccontextmanager
async def open_test_server(app: ASGIApp, **serve_options: Any) -> AsyncIterator[RunningServer]:
    """Run ``app`` on Hypercorn at ``127.0.0.1:0`` for the body of the ``async with``.

    Yields a :class:`RunningServer` (``.url``, ``.port``, request accounting).
    ``serve_options`` go to :func:`trio_stream.serve` (``certfile``,
    ``graceful_timeout``, ``send_timeout`` ...). Leaving the block shuts the
    server down gracefully (see :func:`serve`), which is bounded.
    """
    server = RunningServer(app)
    serve_options.setdefault("graceful_timeout", 1.0)
    try:
        async with trio.open_nursery() as nursery:
            server.url = await nursery.start(partial(serve, server.app, **serve_options))
            server.port = int(server.url.rsplit(":", 1)[1])
            try:
                yield server
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise_single(group)
