"""Peer: the ``websockets`` library on asyncio (uvloop), a bounded queue and writer per client.

The pattern its docs suggest when ``broadcast()``'s "skip slow clients"
semantics are not wanted: each connection drains its own ``asyncio.Queue``.
"""

from __future__ import annotations

import asyncio

import uvloop
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from ._contract import (
    QUEUE_CAPACITY,
    Broadcast,
    answer_text,
    parse_args,
    report_ready,
)


class Server:
    """The subscriber registry and the publisher."""

    def __init__(self) -> None:
        self.subscribers: set[asyncio.Queue[str]] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    async def publish(self, spec: Broadcast) -> None:
        await asyncio.sleep(0)  # even for an empty broadcast
        loop = asyncio.get_running_loop()
        start = loop.time()
        for seq in range(spec.count):
            if spec.rate:
                await asyncio.sleep(max(0.0, spec.due(start, seq) - loop.time()))
            data = spec.payload(seq)
            for queue in list(self.subscribers):
                await queue.put(data)

    async def handle(self, websocket: ServerConnection) -> None:  # noqa: ASYNC910  asyncio
        path = websocket.request.path if websocket.request else ""
        if path == "/ws":
            queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_CAPACITY)
            self.subscribers.add(queue)
            try:
                while True:
                    await websocket.send(await queue.get())
            except ConnectionClosed:
                pass
            finally:
                self.subscribers.discard(queue)
        elif path == "/control":
            async for message in websocket:
                await websocket.send(self.control(message))
        else:
            await websocket.close(1008, "unknown path")

    def control(self, message: str | bytes) -> str:
        return answer_text(message, lambda: len(self.subscribers), self.start)

    def start(self, spec: Broadcast) -> None:
        task = asyncio.create_task(self.publish(spec))
        self.tasks.add(task)  # a reference, so the task is not garbage-collected
        task.add_done_callback(self.tasks.discard)


async def main(host: str, port: int) -> None:
    """Serve the contract until killed."""
    server = Server()
    async with serve(server.handle, host, port, backlog=4096) as ws_server:
        report_ready(next(iter(ws_server.sockets)).getsockname()[1])
        await ws_server.serve_forever()


if __name__ == "__main__":
    args = parse_args(__doc__ or "")
    uvloop.run(main(args.host, args.port))
