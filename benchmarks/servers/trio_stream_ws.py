"""trio_stream's WebSocket server, written as a user would: ``serve_websockets`` + Hub rooms.

``/ws`` joins the Hub topic (events arrive as ``{"id", "event", "data"}`` JSON
text, the library's room format); ``/control`` answers control requests. As
for every peer, nothing may be lost: the room membership and the outbound
queue both use ``Overflow.BLOCK`` (capacity 256 each). The subscriber count
is the room's (all members share one Hub subscription).
"""

from __future__ import annotations

from functools import partial

import trio

from trio_stream import (
    CloseCode,
    Event,
    Hub,
    Overflow,
    WebSocketPeer,
    WebSocketServer,
    serve_websockets,
)

from ._contract import QUEUE_CAPACITY, Broadcast, control_answer, parse_args, report_ready

TOPIC = "bench"


class Server:
    """The handler and the publisher."""

    def __init__(self, hub: Hub, nursery: trio.Nursery) -> None:
        self.hub = hub
        self.nursery = nursery
        self.ws_server: WebSocketServer | None = None

    async def publish(self, spec: Broadcast) -> None:
        await trio.lowlevel.checkpoint()  # even for an empty broadcast
        start = trio.current_time()
        for seq in range(spec.count):
            if spec.rate:
                await trio.sleep_until(spec.due(start, seq))
            await self.hub.publish(TOPIC, Event(spec.payload(seq)))

    def start(self, spec: Broadcast) -> None:
        self.nursery.start_soon(self.publish, spec)

    def subscribers(self) -> int:
        # The room's member count: one Hub subscription serves all of them.
        return self.ws_server.subscribers(TOPIC) if self.ws_server is not None else 0

    async def handle(self, peer: WebSocketPeer) -> None:
        if peer.request.path == "/ws":
            await peer.subscribe(TOPIC, capacity=QUEUE_CAPACITY, overflow=Overflow.BLOCK)
            await peer.wait_closed()
        elif peer.request.path == "/control":
            async for request in peer:
                await peer.send(control_answer(request, self.subscribers, self.start))
        else:
            await peer.close(CloseCode.POLICY_VIOLATION, "unknown path")


async def main(host: str, port: int) -> None:
    """Serve the contract until killed."""
    async with trio.open_nursery() as nursery:
        server = Server(Hub(), nursery)
        server.ws_server = ws_server = await nursery.start(
            partial(
                serve_websockets,
                server.handle,
                host=host,
                port=port,
                hub=server.hub,
                rate_limit=None,  # the control connection polls
                outbound_capacity=QUEUE_CAPACITY,
                outbound_overflow=Overflow.BLOCK,
                max_connections=20_000,
                max_connections_per_client=20_000,  # every benchmark client is 127.0.0.1
            )
        )
        report_ready(ws_server.port)


if __name__ == "__main__":
    args = parse_args(__doc__ or "")
    trio.run(main, args.host, args.port)
