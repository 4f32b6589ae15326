"""`FaultProxy`: a TCP proxy on 127.0.0.1:0 that injects network faults for tests."""

from __future__ import annotations

import logging

import trio

__all__ = ["FaultProxy"]

logger = logging.getLogger("trio_stream.testing")

_CHUNK = 16384


class FaultProxy:
    """Forwards TCP connections to ``target_host:target_port``, with faults.

    Start it with ``port = await nursery.start(proxy.serve)`` (it listens on
    127.0.0.1:0); :meth:`url` builds a URL for it. Faults, all readable and
    settable while it runs (new values apply to new data / connections):

    * ``cut_after_bytes``: close each connection once it forwarded that many
      bytes from the target to the client (exactly that many reach the
      client): a stream cut mid-event;
    * ``cut_after_seconds``: close each connection that long after it opened;
    * ``stalled``: while True, nothing is forwarded towards the client (the
      connection stays open: a frozen network path); set it False to resume;
    * ``delay``: seconds of latency added before forwarding each chunk;
    * ``refuse``: close new connections at once, before forwarding anything.

    :meth:`cut_all` closes every open connection at once (a server restart
    or a network blip, as the clients see it).

    Counters: ``connections`` (accepted), ``open_connections``, ``cuts``,
    ``bytes_to_client``. Cancelling :meth:`serve` closes every connection.
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        cut_after_bytes: int | None = None,
        cut_after_seconds: float | None = None,
        stalled: bool = False,
        delay: float = 0.0,
        refuse: bool = False,
    ) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.cut_after_bytes = cut_after_bytes
        self.cut_after_seconds = cut_after_seconds
        self.delay = delay
        self.refuse = refuse
        self.port = 0
        self.connections = 0
        self.open_connections = 0
        self.cuts = 0
        self.bytes_to_client = 0
        self._unstalled = trio.Event()
        self.stalled = stalled
        self._scopes: set[trio.CancelScope] = set()

    @property
    def stalled(self) -> bool:
        """True while forwarding towards the client is paused."""
        return not self._unstalled.is_set()

    @stalled.setter
    def stalled(self, value: bool) -> None:
        if not value:
            self._unstalled.set()
        elif self._unstalled.is_set():
            self._unstalled = trio.Event()

    def cut_all(self) -> int:
        """Close every open connection now; return how many were cut.

        Synchronous: each connection's forwarding is cancelled and both of its
        sockets close at the connection task's next checkpoint. Counted in
        ``cuts``. New connections are accepted as before.
        """
        scopes = list(self._scopes)
        for scope in scopes:
            scope.cancel()
        return len(scopes)

    def url(self, scheme: str = "http", path: str = "") -> str:
        """``scheme://127.0.0.1:<port><path>``."""
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Accept and forward connections until cancelled; reports the listening port."""
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            task_status.started(self.port)
            await trio.serve_listeners(self._handle, listeners, handler_nursery=nursery)

    async def _handle(self, client: trio.SocketStream) -> None:
        self.connections += 1
        self.open_connections += 1
        scope = trio.CancelScope()
        self._scopes.add(scope)
        try:
            async with client:
                if self.refuse:
                    return
                with scope:
                    await self._connect_and_forward(client, scope)
                if scope.cancelled_caught:
                    self.cuts += 1
        finally:
            self._scopes.discard(scope)
            self.open_connections -= 1

    async def _connect_and_forward(
        self, client: trio.SocketStream, scope: trio.CancelScope
    ) -> None:
        try:
            upstream = await trio.open_tcp_stream(self.target_host, self.target_port)
        except OSError:
            logger.info("FaultProxy: target %s:%d refused", *self._target)
            await trio.lowlevel.checkpoint()
            return
        async with upstream:
            if self.cut_after_seconds is not None:
                scope.deadline = trio.current_time() + self.cut_after_seconds
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._forward_up, client, upstream, nursery)
                await self._forward_down(upstream, client)
                nursery.cancel_scope.cancel()

    @property
    def _target(self) -> tuple[str, int]:
        return self.target_host, self.target_port

    async def _forward_up(
        self, client: trio.SocketStream, upstream: trio.SocketStream, nursery: trio.Nursery
    ) -> None:
        await trio.lowlevel.checkpoint()
        try:
            async for chunk in client:
                await upstream.send_all(chunk)
        except trio.BrokenResourceError:
            pass
        nursery.cancel_scope.cancel()  # the client went away: drop the whole connection

    async def _forward_down(self, upstream: trio.SocketStream, client: trio.SocketStream) -> None:
        await trio.lowlevel.checkpoint()
        sent = 0
        try:
            while True:
                await self._unstalled.wait()
                data = await upstream.receive_some(_CHUNK)
                if not data:
                    return
                if self.delay:
                    await trio.sleep(self.delay)
                limit = self.cut_after_bytes
                if limit is not None and sent + len(data) >= limit:
                    # max(): the limit may have been lowered below what was sent.
                    remaining = max(0, limit - sent)
                    await client.send_all(data[:remaining])
                    self.bytes_to_client += remaining
                    self.cuts += 1
                    return
                await client.send_all(data)
                sent += len(data)
                self.bytes_to_client += len(data)
        except trio.BrokenResourceError:
            return
