"""Lesson: a long job reports progress on a topic of its own, owned by the server.

``POST /jobs`` starts a job and returns at once (201): the job runs in the
server's nursery, which outlives the request. It publishes ``progress``
events on ``jobs.<id>``; its first event is published BEFORE the id is
returned, so a client that subscribes with ``last_event_id`` set to it gets
every later event from history, however late it comes. Running jobs are
bounded: each is a task and a topic with history.

Run:  python examples/job_progress.py --port 8000
      curl -X POST 'localhost:8000/jobs?steps=10'   -> {"topic": "jobs.ab12", ...}
      curl -N localhost:8000/sse/jobs.ab12?last_event_id=<first_event_id>
Test: python examples/job_progress.py --port 0 --self-test
"""

from __future__ import annotations

import argparse
import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from functools import partial
from typing import Any
from urllib.parse import parse_qs

import httpx
import trio

from trio_stream import Event, Hub, Router, hub_endpoint, open_event_source, serve

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Scope]]
Send = Callable[[Scope], Awaitable[None]]


async def send_json(send: Send, status: int, body: object) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class Jobs:
    """Starts jobs in ``nursery`` (the server's) and bounds how many run at once."""

    def __init__(self, hub: Hub, nursery: trio.Nursery, max_jobs: int, step_time: float) -> None:
        self.hub, self.nursery, self.step_time = hub, nursery, step_time
        self.slots = trio.Semaphore(max_jobs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = parse_qs(scope["query_string"].decode("latin-1"))
        try:
            steps = int(query.get("steps", ["10"])[0])
        except ValueError:
            steps = 0
        if not 1 <= steps <= 100:  # bad input: a 400 before anything starts
            await send_json(send, 400, {"error": "steps must be 1-100"})
            return
        try:
            self.slots.acquire_nowait()  # refuse, rather than queue without bound
        except trio.WouldBlock:
            await send_json(send, 503, {"error": "too many jobs; retry later"})
            return
        topic = f"jobs.{secrets.token_hex(4)}"
        first = await self.hub.publish(topic, Event.json({"percent": 0}, event="progress"))
        self.nursery.start_soon(self.run, topic, steps)
        await send_json(send, 201, {"topic": topic, "first_event_id": first.id})

    async def run(self, topic: str, steps: int) -> None:
        try:
            for step in range(1, steps):
                await trio.sleep(self.step_time)  # the work itself
                percent = 100 * step // steps
                await self.hub.publish(topic, Event.json({"percent": percent}, event="progress"))
            await trio.sleep(self.step_time)  # the last step
            await self.hub.publish(topic, Event.json({"percent": 100}, event="done"))
        finally:
            self.slots.release()  # also when a shutdown cancels the job


async def follow(url: str, job: dict[str, str]) -> list[int]:
    percents = []
    stream = f"{url}/sse/{job['topic']}"
    async with open_event_source(stream, last_event_id=job["first_event_id"]) as source:
        async for event in source:
            percents.append(json.loads(event.data)["percent"])
            if event.event == "done":
                break
    return percents


async def self_test(url: str) -> None:
    async with httpx.AsyncClient() as client:
        jobs = [(await client.post(f"{url}/jobs?steps=5")).json() for _ in range(2)]
        refused = await client.post(f"{url}/jobs?steps=500")
    assert refused.status_code == 400
    # Follow the first job to its end; by then the second has run too. Its
    # events come from history: subscribing late misses nothing.
    for job in jobs:
        percents = await follow(url, job)
        print(job["topic"], "progress:", percents)
        assert percents == [20, 40, 60, 80, 100], percents
    print("self-test ok: 2 jobs followed from their first event to done")


async def main(args: argparse.Namespace) -> None:
    hub = Hub()
    async with trio.open_nursery() as nursery:
        # The jobs' owner is this nursery: cancelling the server cancels them.
        jobs = Jobs(hub, nursery, max_jobs=8, step_time=0.02 if args.self_test else 0.5)
        router = Router()
        router.add("/jobs", jobs, methods=["POST"])
        router.add("/sse/{topic}", hub_endpoint(hub, topics=lambda t: t.startswith("jobs.")))
        url = await nursery.start(partial(serve, router, host=args.host, port=args.port))
        print(f"POST {url}/jobs?steps=10, then GET {url}/sse/<topic>")
        if args.self_test:
            with trio.fail_after(20):  # a safety bound, not a wait
                await self_test(url)
            nursery.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--self-test", action="store_true", help="run two jobs, then exit")
    try:
        trio.run(main, parser.parse_args())
    except* KeyboardInterrupt:  # Ctrl-C: the nurseries have cleaned up on the way out
        print("stopped")
