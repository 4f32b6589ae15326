"""Peer: the ``websockets`` library's trio implementation (``websockets.trio``, 16+).

Publishes with its ``broadcast()``, which writes a message to every open
connection concurrently and returns once all writes are done.
"""

from __future__ import annotations

from functools import partial

import trio
from websockets.trio.connection import broadcast
from websockets.trio.server import ServerConnection, serve

from ._contract import Broadcast, answer_text, parse_args, report_ready


class Server:
    """The subscriber registry and the publisher."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self.nursery = nursery
        self.subscribers: set[ServerConnection] = set()

    async def publish(self, spec: Broadcast) -> None:
        await trio.lowlevel.checkpoint()  # even for an empty broadcast
        start = trio.current_time()
        for seq in range(spec.count):
            if spec.rate:
                await trio.sleep_until(spec.due(start, seq))
            await broadcast(self.subscribers, spec.payload(seq))

    async def handle(self, websocket: ServerConnection) -> None:
        path = websocket.request.path if websocket.request else ""
        if path == "/ws":
            self.subscribers.add(websocket)
            try:
                await websocket.wait_closed()
            finally:
                self.subscribers.discard(websocket)
        elif path == "/control":
            async for message in websocket:
                await websocket.send(self.control(message))
        else:
            await websocket.aclose(1008, "unknown path")

    def control(self, message: str | bytes) -> str:
        return answer_text(message, lambda: len(self.subscribers), self.start)

    def start(self, spec: Broadcast) -> None:
        self.nursery.start_soon(self.publish, spec)


async def main(host: str, port: int) -> None:
    """Serve the contract until killed."""
    async with trio.open_nursery() as nursery:
        server = Server(nursery)
        ws_server = await nursery.start(
            partial(serve, server.handle, port, host=host, backlog=4096)
        )
        report_ready(ws_server.listeners[0].socket.getsockname()[1])


if __name__ == "__main__":
    args = parse_args(__doc__ or "")
    trio.run(main, args.host, args.port)
