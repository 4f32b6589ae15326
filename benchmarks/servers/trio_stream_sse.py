"""trio_stream's SSE endpoint, written as a user would: a Hub, ``sse_response``, ``serve``.

One topic; each ``GET /sse`` subscribes to it through ``sse_response(hub=...,
topic=...)``, and the publisher calls ``hub.publish`` in a loop. ``serve`` runs
with ``freeze_gc=True``, the setting its docs give for a process that only
serves streams. Subscribers
use ``Overflow.BLOCK`` like every peer here (CONTRACT.md: the benchmark
checks that nothing is lost), with the Hub's default capacity of 256.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from functools import partial
from typing import Any

import trio
from hypercorn.config import Config

from trio_stream import Event, Hub, Overflow, Route, Router, serve, sse_response

from ._contract import QUEUE_CAPACITY, Broadcast, parse_args, parse_broadcast_query, report_ready

TOPIC = "bench"

# ASGI callables, typed the way trio_stream's Router expects them.
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Scope]]
Send = Callable[[Scope], Awaitable[None]]


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_app(hub: Hub, nursery: trio.Nursery) -> Router:
    """The contract's routes over one Hub topic."""

    async def publish(spec: Broadcast) -> None:
        await trio.lowlevel.checkpoint()  # even for an empty broadcast
        start = trio.current_time()
        for seq in range(spec.count):
            if spec.rate:
                await trio.sleep_until(spec.due(start, seq))
            await hub.publish(TOPIC, Event(spec.payload(seq)))

    async def events(scope: Scope, receive: Receive, send: Send) -> None:
        response = sse_response(
            hub=hub, topic=TOPIC, capacity=QUEUE_CAPACITY, overflow=Overflow.BLOCK
        )
        await response(scope, receive, send)

    async def subscribers(scope: Scope, receive: Receive, send: Send) -> None:
        await _plain(send, 200, str(hub.statistics().subscribers))

    async def broadcast(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            spec = parse_broadcast_query(scope["query_string"].decode("latin-1"))
        except ValueError:
            await _plain(send, 400, "bad request")
            return
        nursery.start_soon(publish, spec)
        await _plain(send, 202, "started")

    return Router(
        [
            Route("/sse", events),
            Route("/control/subscribers", subscribers),
            Route("/control/broadcast", broadcast, methods=["POST"]),
        ]
    )


async def main(host: str, port: int) -> None:
    """Serve the contract until killed."""
    config = Config()
    config.backlog = 4096  # the same listen backlog as every peer
    hub = Hub()
    async with trio.open_nursery() as nursery:
        app = create_app(hub, nursery)
        # freeze_gc: a process that only serves streams, as serve()'s docs advise.
        url: str = await nursery.start(
            partial(serve, app, host=host, port=port, config=config, freeze_gc=True)
        )
        report_ready(int(url.rsplit(":", 1)[1]))


if __name__ == "__main__":
    args = parse_args(__doc__ or "")
    trio.run(main, args.host, args.port)
