"""Lesson: with a RedisBroker per instance, any instance serves and resumes any client.

Two Hubs stand for two server processes behind a load balancer; each has its
own RedisBroker on the same Redis. A publish on instance A goes into the
topic's Redis Stream (XADD); every instance tails that stream, so clients of
B get A's events, with the same ids, in Redis's order. A client that read
from B and comes back on A with its Last-Event-ID resumes from the stream
(XRANGE): no gap, no duplicate, whichever instance it lands on.

Run:  redis-server &  python examples/redis_scale_out.py --redis redis://127.0.0.1:6379/0
      curl -N localhost:8001/sse/news      (instance B shows what A publishes)
Test: python examples/redis_scale_out.py --port 0 --self-test
      (starts its own redis-server on a free port unless --redis is given; exits 3
      if there is no redis-server on PATH)
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import socket
import subprocess
import sys
from functools import partial

import trio

from trio_stream import (
    Event,
    Hub,
    RedisBroker,
    Router,
    hub_endpoint,
    open_event_source,
    open_hub,
    serve,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def start_redis(nursery: trio.Nursery, program: str) -> str:
    # The redis-server process is owned by a nursery like any task: when the
    # nursery is cancelled, run_process terminates it (and kills it if it hangs).
    port = free_port()
    command = [program, "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--save", "", "--appendonly", "no"]  # a throwaway server: no files
    await nursery.start(partial(trio.run_process, command, stdout=subprocess.DEVNULL, check=False))
    return f"redis://127.0.0.1:{port}/0"


async def publish_news(hub: Hub, interval: float) -> None:
    n = 0
    while True:
        await hub.publish("news", Event.json({"n": n, "from": "A"}, event="news"))
        n += 1
        await trio.sleep(interval)


async def self_test(url_a: str, url_b: str) -> None:
    seen: list[Event] = []
    async with open_event_source(f"{url_b}/sse/news") as source:  # published on A, read on B
        async for event in source:
            seen.append(event)
            if len(seen) == 3:
                break
    print("read on B:", *(event.data for event in seen))
    # The load balancer sends the reconnection to A: it resumes from Redis.
    async with open_event_source(f"{url_a}/sse/news", last_event_id=seen[0].id) as source:
        async for event in source:
            assert event.id == seen[1].id, (event.id, seen[1].id)
            break
    print(f"self-test ok: A's events arrived through B; resumed on A after {seen[0].id}")


async def main(args: argparse.Namespace) -> None:
    async with trio.open_nursery() as processes:
        redis_url = args.redis
        if redis_url is None and args.self_test:
            redis_url = await start_redis(processes, args.redis_server)
        redis_url = redis_url or "redis://127.0.0.1:6379/0"
        broker_a, broker_b = RedisBroker(redis_url), RedisBroker(redis_url)
        async with open_hub(broker_a) as hub_a, open_hub(broker_b) as hub_b:
            # The brokers start even when Redis is not up yet, and probe it:
            # wait until both answer (bounded in the self-test).
            print(f"waiting for Redis at {broker_a.url}")
            with trio.fail_after(20) if args.self_test else contextlib.nullcontext():
                await broker_a.wait_available()
                await broker_b.wait_available()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(publish_news, hub_a, 0.05 if args.self_test else args.interval)
                urls = []
                for hub, port in ((hub_a, args.port), (hub_b, args.port + 1 if args.port else 0)):
                    app = Router()
                    app.add("/sse/{topic}", hub_endpoint(hub, topics={"news"}))
                    urls.append(
                        await nursery.start(partial(serve, app, host=args.host, port=port))
                    )
                print(f"instance A on {urls[0]}/sse/news, instance B on {urls[1]}/sse/news")
                if args.self_test:
                    with trio.fail_after(20):  # a safety bound, not a wait
                        await self_test(*urls)
                    nursery.cancel_scope.cancel()
        processes.cancel_scope.cancel()  # stops our redis-server, if we started one


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="instance A; B gets port+1")
    parser.add_argument("--redis", help="Redis URL (default redis://127.0.0.1:6379/0)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between events")
    parser.add_argument("--self-test", action="store_true", help="run a client, then exit")
    arguments = parser.parse_args()
    arguments.redis_server = shutil.which("redis-server")
    if arguments.self_test and arguments.redis is None and arguments.redis_server is None:
        print("redis-server is not on PATH: install Redis, or pass --redis URL", file=sys.stderr)
        sys.exit(3)
    try:
        trio.run(main, arguments)
    except* KeyboardInterrupt:  # Ctrl-C: the nurseries have cleaned up on the way out
        print("stopped")
