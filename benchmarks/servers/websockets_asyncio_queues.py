"""Peer: the ``websockets`` library on asyncio (uvloop), a bounded queue and writer per client.

The pattern its docs suggest when ``broadcast()``'s "skip slow clients"
semantics are not wanted: each connection drains its own ``asyncio.Queue``.
"""

from __future__ import annotations

import asyncio

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from ._asyncio_ws import AsyncioPeer, run
from ._contract import QUEUE_CAPACITY, Broadcast


class Server(AsyncioPeer):
    """The subscriber registry and the publisher."""

    def __init__(self) -> None:
        super().__init__()
        self.subscribers: set[asyncio.Queue[str]] = set()

    def subscriber_count(self) -> int:
        return len(self.subscribers)

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

    async def follow(self, websocket: ServerConnection) -> None:  # noqa: ASYNC910  asyncio
        queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_CAPACITY)
        self.subscribers.add(queue)
        try:
            while True:
                await websocket.send(await queue.get())
        except ConnectionClosed:
            pass
        finally:
            self.subscribers.discard(queue)


if __name__ == "__main__":
    run(Server(), __doc__ or "")
