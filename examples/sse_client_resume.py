"""Lesson: a client that reconnects the way the spec says loses nothing.

``open_event_source`` remembers the id of the last event it handed you. When
the connection breaks (here a FaultProxy cuts every connection after a few
hundred bytes, mid-event), it waits a backoff delay (the server's ``retry:``
sets its base), reconnects with ``Last-Event-ID``, and the server replays
what the client missed from the topic's history. The consumer just iterates:
the events arrive in order, with no gap and no duplicate.

Run:  python examples/sse_client_resume.py --port 8000   (prints events forever)
Test: python examples/sse_client_resume.py --port 0 --self-test
"""

from __future__ import annotations

import argparse
import json
from functools import partial

import trio

from trio_stream import (
    Backoff,
    Event,
    EventSourceStatistics,
    Hub,
    Router,
    hub_endpoint,
    open_event_source,
    serve,
)
from trio_stream.testing import FaultProxy


async def count_forever(hub: Hub, interval: float) -> None:
    n = 0
    while True:
        await hub.publish("counter", Event.json({"n": n}))
        n += 1
        await trio.sleep(interval)


def on_reconnect(stats: EventSourceStatistics) -> None:
    # Called before each backoff wait: the place for a "reconnecting..." banner.
    print(f"  cut! reconnecting in {stats.last_delay:.3f}s after id {stats.last_event_id}")


async def read(url: str, limit: int | None) -> None:
    seen: list[int] = []
    async with open_event_source(
        url,
        # Short delays for the demo; the server's retry: (100 ms) becomes the base.
        backoff=Backoff(initial=0.05, maximum=1.0),
        max_retries=5,  # failures IN A ROW; any byte received resets the count
        on_reconnect=on_reconnect,
    ) as source:
        async for event in source:
            n = json.loads(event.data)["n"]
            print(f"event {event.id}: n={n}")
            # Across every cut: each number exactly once, in order.
            assert not seen or n == seen[-1] + 1, f"gap or duplicate: {seen[-1]} -> {n}"
            seen.append(n)
            if limit is not None and len(seen) == limit:
                break
        stats = source.statistics()
    print(
        f"self-test ok: {len(seen)} events in order over {stats.connections} connections"
        f" ({stats.reconnects} reconnects), no gap, no duplicate"
    )


async def main(args: argparse.Namespace) -> None:
    hub = Hub()
    app = Router()
    app.add("/sse/{topic}", hub_endpoint(hub, topics={"counter"}, retry=100))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(count_forever, hub, 0.02 if args.self_test else args.interval)
        url = await nursery.start(partial(serve, app, host=args.host, port=args.port))
        host, port = url.removeprefix("http://").rsplit(":", 1)
        # The proxy forwards to the server and cuts each connection after
        # --cut-after bytes (response headers included): a flaky network.
        proxy = FaultProxy(host, int(port), cut_after_bytes=args.cut_after)
        await nursery.start(proxy.serve)
        print(f"server {url}/sse/counter; through the cutting proxy {proxy.url()}")
        if args.self_test:
            with trio.fail_after(20):  # a safety bound; the run takes about a second
                await read(proxy.url(path="/sse/counter"), limit=40)
            assert proxy.cuts >= 2, "the proxy should have cut several connections"
            nursery.cancel_scope.cancel()
        else:
            await read(proxy.url(path="/sse/counter"), limit=None)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between events")
    parser.add_argument("--cut-after", type=int, default=700, help="bytes per connection")
    parser.add_argument("--self-test", action="store_true", help="read 40 events, then exit")
    try:
        trio.run(main, parser.parse_args())
    except* KeyboardInterrupt:  # Ctrl-C: the nurseries have cleaned up on the way out
        print("stopped")
