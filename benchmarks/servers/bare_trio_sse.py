"""The ceiling: SSE bytes written straight to trio sockets, no HTTP library.

Per connection: a bounded memory channel, a writer that drains whatever is
queued into one ``send_all``, and a watcher that ends the stream when the client
goes away. The publisher encodes each event once and hands the same bytes to
every subscriber, waiting only on a full queue. Parses just enough HTTP for
the contract (request line of a request of at most 8 KiB).
"""

from __future__ import annotations

import contextlib
from functools import partial

import trio

from ._contract import QUEUE_CAPACITY, Broadcast, parse_args, parse_broadcast_query, report_ready

_MAX_HEAD = 8192
_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/event-stream; charset=utf-8\r\n"
    b"Cache-Control: no-cache\r\n"
    b"X-Accel-Buffering: no\r\n"
    b"Connection: close\r\n\r\n"
)


class Server:
    """The subscriber registry and the publisher."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self.nursery = nursery
        self.subscribers: set[trio.MemorySendChannel[bytes]] = set()

    async def publish(self, spec: Broadcast) -> None:
        await trio.lowlevel.checkpoint()  # even for an empty broadcast
        start = trio.current_time()
        for seq in range(spec.count):
            if spec.rate:
                await trio.sleep_until(spec.due(start, seq))
            data = b"data: " + spec.payload(seq).encode() + b"\n\n"
            for channel in list(self.subscribers):
                try:
                    channel.send_nowait(data)
                except trio.WouldBlock:
                    await channel.send(data)
                except trio.BrokenResourceError:
                    self.subscribers.discard(channel)

    async def handle(self, stream: trio.SocketStream) -> None:
        async with stream:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = await stream.receive_some(4096)
                if not chunk or len(head) > _MAX_HEAD:
                    return
                head += chunk
            method, _, rest = head.partition(b" ")
            target = rest.partition(b" ")[0].decode("latin-1")
            path, _, query = target.partition("?")
            if method == b"GET" and path == "/sse":
                await self.stream_events(stream)
            elif method == b"GET" and path == "/control/subscribers":
                await _respond(stream, 200, str(len(self.subscribers)))
            elif method == b"POST" and path == "/control/broadcast":
                try:
                    spec = parse_broadcast_query(query)
                except ValueError:
                    await _respond(stream, 400, "bad request")
                    return
                self.nursery.start_soon(self.publish, spec)
                await _respond(stream, 202, "started")
            else:
                await _respond(stream, 404, "not found")

    async def stream_events(self, stream: trio.SocketStream) -> None:  # noqa: ASYNC910  (*)
        send_channel, receive_channel = trio.open_memory_channel[bytes](QUEUE_CAPACITY)
        self.subscribers.add(send_channel)
        try:
            with send_channel, receive_channel:
                await stream.send_all(_SSE_HEAD)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_watch_disconnect, stream, nursery.cancel_scope)
                    async for first in receive_channel:
                        batch = [first]
                        while True:
                            try:
                                batch.append(receive_channel.receive_nowait())
                            except trio.WouldBlock:
                                break
                        await stream.send_all(b"".join(batch))
        except* trio.BrokenResourceError:  # the client left while we wrote
            pass
        finally:
            self.subscribers.discard(send_channel)


# (*) trio's stream methods checkpoint before they return or raise; flake8-async
# cannot see it through the exception paths.
async def _watch_disconnect(stream: trio.SocketStream, scope: trio.CancelScope) -> None:  # noqa: ASYNC910  (*)
    with contextlib.suppress(trio.BrokenResourceError):
        while await stream.receive_some(4096):
            pass
    scope.cancel()


async def _respond(stream: trio.SocketStream, status: int, body: str) -> None:  # noqa: ASYNC910  (*)
    reason = {200: "OK", 202: "Accepted", 400: "Bad Request", 404: "Not Found"}[status]
    data = body.encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with contextlib.suppress(trio.BrokenResourceError):
        await stream.send_all(head + data)


async def main(host: str, port: int) -> None:
    """Serve the contract until killed."""
    async with trio.open_nursery() as nursery:
        server = Server(nursery)
        listeners = await nursery.start(partial(trio.serve_tcp, server.handle, port, host=host))
        report_ready(listeners[0].socket.getsockname()[1])


if __name__ == "__main__":
    args = parse_args(__doc__ or "")
    trio.run(main, args.host, args.port)
