"""The soak test's server, written with the public API: one Hub, SSE and WebSockets, a publisher.

    python -m benchmarks.servers.soak_server --topics 4 --rate 2 --payload 512

* ``GET /sse/{topic}``: ``hub_endpoint`` (resumes from ``Last-Event-ID``;
  sends a ``reset`` event when the id is no longer in history);
* ``ws://.../ws/{topic}?last_event_id=X``: ``serve_websockets`` with the topic
  as a room (``{"id", "event", "data"}`` frames, a ``reset`` frame likewise);
* ``GET /stats``: JSON with the open trio tasks, open file descriptors,
  subscribers, WebSocket connections and close codes (for the leak checks);
* a publisher: every topic gets ``--rate`` events/s, data ``{"seq": n, "pad": ...}``
  with ``n`` counting from 0 per topic, so clients can detect gaps.

Prints one JSON line ``{"http_port", "ws_port", "pid"}`` on stdout when ready.
SIGTERM or SIGINT shut it down gracefully.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from functools import partial
from typing import Any

import trio
from hypercorn.config import Config

from trio_stream import Event
from trio_stream.core import History, Hub, MemoryBroker, Overflow
from trio_stream.sse import Route, Router, hub_endpoint, serve
from trio_stream.websocket import WebSocketPeer, WebSocketServer, serve_websockets

# ASGI callables, typed the way trio_stream's Router expects them.
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Scope]]
Send = Callable[[Scope], Awaitable[None]]

RESET = Event("history no longer covers your last event id", event="reset")


def _walk_tasks(
    task: trio.lowlevel.Task, skip: trio.lowlevel.Task | None, path: str = ""
) -> Iterator[tuple[str, trio.lowlevel.Task]]:
    """Each task but ``skip``'s subtree, with its path "root > ... > parent > name"."""
    path = f"{path} > {task.name}" if path else task.name
    yield path, task
    for nursery in task.child_nurseries:
        for child in nursery.child_tasks:
            if child is not skip:
                yield from _walk_tasks(child, skip, path)


def _own_connection() -> trio.lowlevel.Task | None:
    # The task serving this very /stats request's connection: its subtree
    # (Hypercorn's per-connection tasks) comes and goes with the request, so
    # counting it would make the baseline depend on timing.
    task: trio.lowlevel.Task | None = trio.lowlevel.current_task()
    while task is not None and not task.name.endswith("_run_handler"):
        task = task.parent_nursery.parent_task if task.parent_nursery else None
    return task


def _awaiting(task: trio.lowlevel.Task) -> list[str]:
    """Where ``task`` is suspended: its chain of awaits, outermost first."""
    chain: list[str] = []
    coro: Any = task.coro
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            chain.append(f"{frame.f_code.co_qualname}:{frame.f_lineno}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return chain


class SoakServer:
    """The Hub, both endpoints, the publisher and the stats."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.topics = [f"soak{i}" for i in range(args.topics)]
        history = History(max_events=args.history)
        self.hub = Hub(MemoryBroker(history=history))
        self.ws: WebSocketServer | None = None
        self.sequence = dict.fromkeys(self.topics, 0)

    def app(self) -> Router:
        """The HTTP routes: the SSE endpoint and the stats."""
        sse = hub_endpoint(
            self.hub,
            topics=self.topics,
            reset_event=RESET,
            capacity=self.args.capacity,
            overflow=Overflow.DISCONNECT,
            send_timeout=self.args.send_timeout,
            keepalive_interval=10.0,
        )
        return Router([Route("/sse/{topic}", sse), Route("/stats", self.stats)])

    async def stats(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET /stats``: what the leak checks compare with the idle baseline."""
        root = trio.lowlevel.current_root_task()
        assert root is not None  # we run inside trio.run
        walked = list(_walk_tasks(root, _own_connection()))
        tasks = Counter(path for path, _ in walked)
        hub = self.hub.statistics()
        ws = self.ws.statistics() if self.ws is not None else None
        stacks = {}
        if b"stacks" in scope.get("query_string", b""):  # /stats?stacks: where each task waits
            stacks = {f"{path} #{i}": _awaiting(task) for i, (path, task) in enumerate(walked)}
        body = json.dumps(
            {
                "stacks": stacks,
                "tasks": tasks.total(),
                "task_names": dict(tasks),
                "fds": len(os.listdir("/proc/self/fd")),
                "subscribers": hub.subscribers,
                "published": hub.published,
                "hub_disconnected": hub.disconnected,
                "ws_open": ws.open if ws else 0,
                "ws_closed": {str(k): v for k, v in ws.closed.items()} if ws else {},
            }
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def handle_ws(self, peer: WebSocketPeer) -> None:
        """``/ws/{topic}``: join the topic, resuming after ``?last_event_id=``."""
        topic = peer.request.path.removeprefix("/ws/")
        if topic not in self.topics:
            await peer.close(4004, "unknown topic")
            return
        last_event_id = peer.request.query.get("last_event_id") or None
        recovered = await peer.subscribe(
            topic, last_event_id=last_event_id, capacity=self.args.capacity
        )
        if last_event_id is not None and not recovered:
            await peer.send({"id": None, "event": RESET.event, "data": RESET.data})
        async for _ in peer:  # clients send nothing; drain whatever comes
            pass

    async def publish_forever(self) -> None:
        """Publish ``--rate`` events/s on every topic, each with its per-topic sequence."""
        pad = "x" * self.args.payload
        interval = 1.0 / self.args.rate
        deadline = trio.current_time()
        while True:
            deadline += interval
            await trio.sleep_until(deadline)
            for topic in self.topics:
                data = {"seq": self.sequence[topic], "pad": pad}
                await self.hub.publish(topic, Event.json(data))
                self.sequence[topic] += 1


async def main(args: argparse.Namespace) -> None:
    """Serve until SIGTERM/SIGINT."""
    server = SoakServer(args)
    config = Config()
    config.backlog = 4096  # a thousand clients connect at once
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            url: str = await nursery.start(
                partial(
                    serve,
                    server.app(),
                    host=args.host,
                    port=args.port,
                    config=config,
                    send_timeout=args.send_timeout,
                )
            )
            server.ws = await nursery.start(
                partial(
                    serve_websockets,
                    server.handle_ws,
                    host=args.host,
                    port=args.ws_port,
                    hub=server.hub,
                    outbound_capacity=args.capacity,
                    send_timeout=args.send_timeout,
                    heartbeat_interval=10.0,
                    pong_timeout=10.0,
                    rate_limit=None,
                    max_connections=50_000,
                    max_connections_per_client=50_000,  # every soak client is 127.0.0.1
                )
            )
            nursery.start_soon(server.publish_forever)
            ready = {"http_port": int(url.rsplit(":", 1)[1]), "ws_port": server.ws.port}
            print(json.dumps({**ready, "pid": os.getpid()}), flush=True)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The server's options (the soak driver passes its own)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ws-port", type=int, default=0)
    parser.add_argument("--topics", type=int, default=4)
    parser.add_argument("--rate", type=float, default=2.0, help="events/s per topic")
    parser.add_argument("--payload", type=int, default=512, help="padding bytes per event")
    parser.add_argument("--history", type=int, default=200, help="events kept per topic")
    parser.add_argument("--capacity", type=int, default=64, help="per-subscriber queue")
    parser.add_argument("--send-timeout", type=float, default=5.0)
    return parser.parse_args(argv)


if __name__ == "__main__":
    trio.run(main, parse_args())
