"""Lesson: the smallest useful SSE server — a Hub topic behind a route.

The README shows `main` from this file. `hub_endpoint` streams any topic,
keeps the connection alive, notices the client leaving at once and resumes a
reconnecting client from its `Last-Event-ID` (the Hub keeps history).
Publishing never waits for a client.

Run:  python examples/quickstart.py            then: curl -N <url>/sse/news
Test: python examples/quickstart.py --self-test
"""

from __future__ import annotations

import itertools
import sys

import trio

from trio_stream import Event, Hub, Router, hub_endpoint, open_event_source, serve


async def main(self_test: bool = False) -> None:
    hub = Hub()  # topics with bounded history, in memory
    app = Router()
    app.add("/sse/{topic}", hub_endpoint(hub))  # GET /sse/news, resumable
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve, app)  # Hypercorn on 127.0.0.1, a free port
        print(f"curl -N {url}/sse/news")
        if self_test:
            nursery.start_soon(read_three, url, nursery.cancel_scope)
        for n in itertools.count():
            await hub.publish("news", Event.json({"n": n}, event="tick"))
            await trio.sleep(0.01 if self_test else 1.0)


async def read_three(url: str, done: trio.CancelScope) -> None:
    seen: list[str] = []
    with trio.fail_after(20):
        async with open_event_source(f"{url}/sse/news") as source:
            async for event in source:
                seen.append(event.data)
                if len(seen) == 3:
                    break  # an EventSource is not a generator: break is safe
    print("self-test ok:", *seen)
    done.cancel()


if __name__ == "__main__":
    trio.run(main, "--self-test" in sys.argv)
