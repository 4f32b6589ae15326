"""Peer: the ``websockets`` library on asyncio (uvloop), publishing with ``broadcast()``.

``broadcast()`` writes each message into every connection's transport buffer
at once and never waits for a reader: the library's documented fan-out.
"""

from __future__ import annotations

import asyncio

from websockets.asyncio.server import ServerConnection, broadcast

from ._asyncio_ws import AsyncioPeer, run
from ._contract import Broadcast


class Server(AsyncioPeer):
    """The subscriber registry and the publisher."""

    def __init__(self) -> None:
        super().__init__()
        self.subscribers: set[ServerConnection] = set()

    def subscriber_count(self) -> int:
        return len(self.subscribers)

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

    async def follow(self, websocket: ServerConnection) -> None:
        self.subscribers.add(websocket)
        try:
            await websocket.wait_closed()
        finally:
            self.subscribers.discard(websocket)


if __name__ == "__main__":
    run(Server(), __doc__ or "")
