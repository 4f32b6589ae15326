"""Peer: trio-websocket with a bounded memory channel and a writer task per connection."""

from __future__ import annotations

from functools import partial

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest, serve_websocket

from ._contract import (
    QUEUE_CAPACITY,
    Broadcast,
    answer_text,
    parse_args,
    report_ready,
)


class Server:
    """The subscriber registry and the publisher."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self.nursery = nursery
        self.subscribers: set[trio.MemorySendChannel[str]] = set()

    async def publish(self, spec: Broadcast) -> None:
        await trio.lowlevel.checkpoint()  # even for an empty broadcast
        start = trio.current_time()
        for seq in range(spec.count):
            if spec.rate:
                await trio.sleep_until(spec.due(start, seq))
            data = spec.payload(seq)
            for channel in list(self.subscribers):
                try:
                    await channel.send(data)
                except trio.BrokenResourceError:
                    self.subscribers.discard(channel)

    async def handle(self, request: WebSocketRequest) -> None:
        websocket = await request.accept()
        try:
            if request.path == "/ws":
                await self.subscribe(websocket)
            elif request.path == "/control":
                while True:
                    message = await websocket.get_message()
                    await websocket.send_message(self.control(message))
        except ConnectionClosed:
            pass

    # trio-websocket checkpoints before raising ConnectionClosed; flake8-async
    # cannot see it through the exception paths.
    async def subscribe(self, websocket: WebSocketConnection) -> None:  # noqa: ASYNC910
        send_channel, receive_channel = trio.open_memory_channel[str](QUEUE_CAPACITY)
        self.subscribers.add(send_channel)
        try:
            with send_channel, receive_channel:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_watch_close, websocket, nursery.cancel_scope)
                    async for message in receive_channel:
                        await websocket.send_message(message)
        except* ConnectionClosed:  # the client left while we wrote
            pass
        finally:
            self.subscribers.discard(send_channel)

    def control(self, message: str | bytes) -> str:
        return answer_text(message, lambda: len(self.subscribers), self.start)

    def start(self, spec: Broadcast) -> None:
        self.nursery.start_soon(self.publish, spec)


async def _watch_close(  # noqa: ASYNC910  get_message checkpoints before raising
    websocket: WebSocketConnection, scope: trio.CancelScope
) -> None:
    try:
        while True:
            await websocket.get_message()
    except ConnectionClosed:
        scope.cancel()


async def main(host: str, port: int) -> None:
    """Serve the contract until killed."""
    async with trio.open_nursery() as nursery:
        server = Server(nursery)
        ws_server = await nursery.start(
            partial(serve_websocket, server.handle, host, port, None, handler_nursery=nursery)
        )
        report_ready(ws_server.port)


if __name__ == "__main__":
    args = parse_args(__doc__ or "")
    trio.run(main, args.host, args.port)
