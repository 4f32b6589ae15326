"""HTTP/2 over TLS (trustme certificates): streaming, disconnect cleanup, frozen readers."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trio

from trio_stream.core import Hub
from trio_stream.protocol import Event
from trio_stream.sse import EventStream, Route, Router, hub_endpoint
from trio_stream.sse._asgi import Receive, Scope, Send
from trio_stream.testing import (
    TLSCertificate,
    issue_tls_certificate,
    open_sse_reader,
    open_test_server,
)

SAFETY = 10  # seconds: a bound on each test, never a wait for something to happen


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> TLSCertificate:
    directory: Path = tmp_path_factory.mktemp("tls")
    return issue_tls_certificate(directory)


async def test_http2_streams_events_and_cleans_up_on_disconnect(
    certificate: TLSCertificate,
) -> None:
    hub = Hub()
    router = Router([Route("/sse/{topic}", hub_endpoint(hub))])
    tls = {"certfile": certificate.certfile, "keyfile": certificate.keyfile}
    with trio.fail_after(SAFETY):
        async with open_test_server(router, **tls) as server:
            assert server.url.startswith("https://127.0.0.1:")
            context = certificate.client_context()
            async with httpx.AsyncClient(http2=True, verify=context) as client:
                url = f"{server.url}/sse/prices"
                async with client.stream("GET", url) as response:
                    assert response.http_version == "HTTP/2"
                    assert response.headers["content-type"].startswith("text/event-stream")
                    async with open_sse_reader(response) as reader:
                        await reader.chunk()  # preamble: subscribed
                        for i in range(3):
                            await hub.publish("prices", Event(str(i)))
                        assert [e.data for e in await reader.events(3)] == ["0", "1", "2"]
                bad = await client.get(f"{server.url}/sse/bad%20topic")
                assert bad.status_code == 400
            # httpcore does not reset an HTTP/2 stream whose response is closed
            # early (encode/httpcore#943); closing the connection ends it.
            await server.wait_idle()
            assert hub.statistics().subscribers == 0


async def test_http2_frozen_stream_is_ended_by_send_timeout(
    certificate: TLSCertificate,
) -> None:
    finished = trio.Event()

    async def flood(send_channel: trio.MemorySendChannel[Event]) -> None:
        try:
            for i in range(100_000):
                await send_channel.send(Event("y" * 16384, id=str(i)))
        finally:
            finished.set()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await EventStream(flood, send_timeout=0.5)(scope, receive, send)

    tls = {"certfile": certificate.certfile, "keyfile": certificate.keyfile}
    with trio.fail_after(SAFETY):
        async with open_test_server(app, send_timeout=SAFETY, **tls) as server:
            context = certificate.client_context()
            async with (
                httpx.AsyncClient(http2=True, verify=context) as client,
                client.stream("GET", server.url) as response,
            ):
                assert response.http_version == "HTTP/2"
                # Never read: the HTTP/2 flow-control window fills up and the
                # server's send blocks (cancellably) until send_timeout.
                await finished.wait()
                await server.wait_idle()
