"""Hub-backed streams: ``on_resume`` reports recovery; a failing broker gets 503 + Retry-After."""

from __future__ import annotations

import httpx
import pytest
import trio

from trio_stream.core import BrokerUnavailableError, Hub, MemoryBroker, Subscription
from trio_stream.protocol import Event
from trio_stream.sse import EventStream, Route, Router, hub_endpoint, hub_topics_endpoint
from trio_stream.sse._asgi import Receive, Scope, Send
from trio_stream.testing import open_sse_reader, open_test_server

SAFETY = 10  # seconds: a safety bound only
RESET = Event("{}", event="reset")


async def test_on_resume_reports_recovered_only_for_requests_that_resume() -> None:
    hub = Hub()
    seen: list[tuple[str, bool]] = []

    def on_resume(subscription: Subscription) -> None:
        seen.append((subscription.topic, subscription.recovered))

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        stream = EventStream.from_hub(
            hub, "t", reset_event=RESET, on_resume=on_resume, keepalive_interval=None
        )
        await stream(scope, receive, send)

    latest = await hub.publish("t", Event("old"))
    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server, httpx.AsyncClient() as client:
            for case in (None, "latest", "unknown-id"):
                last_id = latest.id if case == "latest" else case
                headers = {"last-event-id": last_id} if last_id else {}
                async with (
                    client.stream("GET", server.url, headers=headers) as response,
                    open_sse_reader(response) as reader,
                ):
                    assert response.status_code == 200
                    latest = await hub.publish("t", Event("new"))
                    got = await reader.events(2 if last_id == "unknown-id" else 1)
                    assert got[-1].id == latest.id
                    if last_id == "unknown-id":
                        assert got[0].event == "reset"
    assert seen == [("t", True), ("t", False)]


class DownBroker(MemoryBroker):
    """A broker whose backend is unreachable at subscribe time (as RedisBroker in an outage)."""

    async def watch(self, topic: str) -> None:
        await trio.lowlevel.checkpoint()
        raise BrokerUnavailableError("backend down: secret detail")


@pytest.mark.parametrize("path", ["/sse/x", "/sse?topic=a&topic=b"])
async def test_a_broker_failing_at_subscribe_is_503_with_retry_after(path: str) -> None:
    hub = Hub(DownBroker())
    router = Router(
        [Route("/sse", hub_topics_endpoint(hub)), Route("/sse/{topic}", hub_endpoint(hub))]
    )
    with trio.fail_after(SAFETY):
        async with open_test_server(router) as server, httpx.AsyncClient() as client:
            response = await client.get(server.url + path)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert response.text == "temporarily unavailable"  # no exception text
