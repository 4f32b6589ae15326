"""What the two asyncio ``websockets`` peers share: routing, control requests, serving.

Each peer subclasses :class:`AsyncioPeer` with its own subscriber registry,
``publish`` (how it fans out) and ``follow`` (what a ``/ws`` connection does).
"""

from __future__ import annotations

import asyncio

import uvloop
from websockets.asyncio.server import ServerConnection, serve

from ._contract import Broadcast, answer_text, parse_args, report_ready


class AsyncioPeer:
    """The contract's routes on a ``websockets`` asyncio server."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()

    def subscriber_count(self) -> int:
        raise NotImplementedError

    async def publish(self, spec: Broadcast) -> None:
        raise NotImplementedError

    async def follow(self, websocket: ServerConnection) -> None:
        """Serve one ``/ws`` subscriber until it leaves."""
        raise NotImplementedError

    async def handle(self, websocket: ServerConnection) -> None:
        path = websocket.request.path if websocket.request else ""
        if path == "/ws":
            await self.follow(websocket)
        elif path == "/control":
            async for message in websocket:
                await websocket.send(answer_text(message, self.subscriber_count, self.start))
        else:
            await websocket.close(1008, "unknown path")

    def start(self, spec: Broadcast) -> None:
        task = asyncio.create_task(self.publish(spec))
        self.tasks.add(task)  # a reference, so the task is not garbage-collected
        task.add_done_callback(self.tasks.discard)


def run(peer: AsyncioPeer, description: str) -> None:
    """Serve the contract with ``peer`` until killed (the command line every server takes)."""
    args = parse_args(description)

    async def main() -> None:
        async with serve(peer.handle, args.host, args.port, backlog=4096) as ws_server:
            report_ready(next(iter(ws_server.sockets)).getsockname()[1])
            await ws_server.serve_forever()

    uvloop.run(main())
