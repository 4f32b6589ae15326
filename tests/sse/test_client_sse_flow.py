"""open_event_source backpressure: the consumer's pace drives the reads, and the server."""

from __future__ import annotations

import trio
import trio.testing

from trio_stream.sse import open_event_source
from trio_stream.sse._asgi import Receive, Scope, Send, handle_lifespan
from trio_stream.testing import open_test_server

SAFETY = 20  # seconds: a bound on the test, never a wait for something to happen
EVENT = b"data: " + b"x" * (16 * 1024) + b"\n\n"
TOTAL = 2000  # 32 MiB: far more than every socket buffer between the two


class Producer:
    """Streams TOTAL big events, counting each one the server managed to send."""

    def __init__(self) -> None:
        self.sent = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await handle_lifespan(receive, send)
            return
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for _ in range(TOTAL):
            await send({"type": "http.response.body", "body": EVENT, "more_body": True})
            self.sent += 1
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def test_a_slow_consumer_makes_the_server_wait() -> None:
    app = Producer()
    with trio.fail_after(SAFETY):
        async with (
            open_test_server(app, send_timeout=None) as server,
            open_event_source(server.url, capacity=4, reconnect_on_close=False) as source,
        ):
            await source.__anext__()
            # Everything settles: the reader is blocked on the full channel,
            # the server on the full socket buffers.
            await trio.testing.wait_all_tasks_blocked(cushion=0.1)
            stalled_at = app.sent
            stats = source.statistics()
            assert stats.queued == stats.capacity == 4
            assert stalled_at < TOTAL  # the producer is waiting for us
            rest = [event async for event in source]
    assert len(rest) == TOTAL - 1
    assert app.sent == TOTAL
    print(f"server stalled after {stalled_at} of {TOTAL} events of {len(EVENT)} bytes")
