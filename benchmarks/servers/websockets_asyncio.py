"""Peer: the ``websockets`` library on asyncio (uvloop), publishing with ``broadcast()``.

``broadcast()`` writes each message into every connection's transport buffer
at once and never waits for a reader: the library's documented fan-out.
"""

from __future__ import annotations

import asyncio

import uvloop
from websockets.asyncio.server import ServerConnection, broadcast, serve

from ._contract import Broadcast, answer_text, parse_args, report_ready


class Server:
    """The subscriber registry and the publisher."""

    def __init__(self) -> None:
        self.subscribers: set[ServerConnection] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    async def publish(self, spec: Broadcast) -> None:
        await asyncio.sleep(0)  # even for an empty broadcast
        loop = asyncio.get_running_loop()
        start = loop.time()
        for seq in range(spec.count):
            delay = spec.due(start, seq) - loop.time()
            # Yield to the loop between events even when not pacing, as any
            # publisher fed by other tasks does.
            await asyncio.sleep(max(0.0, delay) if spec.rate else 0)
            broadcast(self.subscribers, spec.payload(seq))

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
