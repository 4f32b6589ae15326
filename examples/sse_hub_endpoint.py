"""Lesson: an SSE endpoint is a Hub topic behind a route.

The publisher never talks to clients: it publishes into the Hub, which puts
each event into every subscriber's own bounded queue without waiting on any
of them, so one frozen browser tab cannot stall the ticker. Each request gets
its own EventStream (one nursery: writer, keepalive, disconnect watcher), and
resuming from ``Last-Event-ID`` comes with it, because the Hub keeps history.

Run:  python examples/sse_hub_endpoint.py --port 8000
      curl -N http://127.0.0.1:8000/sse/ticker
Test: python examples/sse_hub_endpoint.py --port 0 --self-test
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from functools import partial
from typing import Any

import trio

from trio_stream import Event, Hub, Router, hub_endpoint, open_event_source, serve, sse_response

# The ASGI callable's types, as any ASGI application spells them.
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Scope]]
Send = Callable[[Scope], Awaitable[None]]


async def publish_ticks(hub: Hub, interval: float) -> None:
    # publish() returns as soon as the event is in history and in every
    # subscriber's queue: its pace is this loop's, never a client's.
    n = 0
    while True:
        await hub.publish("ticker", Event.json({"n": n, "price": 100 + n % 7}, event="tick"))
        n += 1
        await trio.sleep(interval)


def build_app(hub: Hub) -> Router:
    router = Router()
    # /sse/{topic}: any topic on the allow-list, resumable. A topic outside
    # the list gets 404, an invalid name 400: bad input never reaches the Hub.
    router.add("/sse/{topic}", hub_endpoint(hub, topics={"ticker"}, retry=2000))

    # The same stream written by hand: build ONE response per request
    # (it holds that request's subscription and tasks), then call it.
    @router.route("/ticker")
    async def ticker(scope: Scope, receive: Receive, send: Send) -> None:
        await sse_response(hub=hub, topic="ticker", keepalive_interval=15.0)(scope, receive, send)

    return router


async def self_test(url: str) -> None:
    # A first client: it iterates events; leaving the block closes the
    # connection at once (the server's watcher sees the disconnect).
    first: list[Event] = []
    async with open_event_source(f"{url}/sse/ticker") as source:
        async for event in source:
            first.append(event)
            if len(first) == 3:
                break  # safe: an EventSource is not a generator
    print("received:", *(event.data for event in first))
    # Come back with the first id: the Hub replays what came after it, so
    # the next event is the second one again: no gap, no duplicate.
    async with open_event_source(f"{url}/ticker", last_event_id=first[0].id) as source:
        async for event in source:
            assert event.id == first[1].id, (event.id, first[1].id)
            break
    print(f"self-test ok: 3 ticks received, resumed after {first[0].id}")


async def main(args: argparse.Namespace) -> None:
    hub = Hub()  # embedded MemoryBroker: history of 1000 events per topic
    async with trio.open_nursery() as nursery:
        nursery.start_soon(publish_ticks, hub, 0.05 if args.self_test else args.interval)
        url = await nursery.start(partial(serve, build_app(hub), host=args.host, port=args.port))
        print(f"serving on {url}/sse/ticker and {url}/ticker")
        if args.self_test:
            with trio.fail_after(20):  # a bound, not a wait: the test takes well under 1 s
                await self_test(url)
            nursery.cancel_scope.cancel()  # graceful: serve() ends open streams cleanly


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between ticks")
    parser.add_argument("--self-test", action="store_true", help="run a client, then exit")
    try:
        trio.run(main, parser.parse_args())
    except* KeyboardInterrupt:  # Ctrl-C: the nurseries have cleaned up on the way out
        print("stopped")
