"""The demo's limits: SSE streams per address, publish rate, CORS, stream lifetime, options."""

from __future__ import annotations

import httpx
import pytest
import trio

from tests.demo._demo_helpers import (
    SAFETY,
    demo_client,
    publish,
    read_metrics,
    running_demo,
    sse_stream,
)
from trio_stream.cli import build_parser, main
from trio_stream.cli._demo import config_from
from trio_stream.protocol import Backoff
from trio_stream.sse import EventSourceStatistics, open_event_source

PAGE = "https://app.example.com"


async def test_sse_streams_per_address_are_limited_across_both_sse_routes() -> None:
    with trio.fail_after(SAFETY):
        async with running_demo(max_sse_per_client=2) as server, demo_client(server) as client:
            async with sse_stream(client, "/sse/news"), sse_stream(client, "/sse?topic=a"):
                one_topic = await client.get("/sse/news")
                several = await client.get("/sse?topic=a&topic=b")
                assert await publish(client, "news", 1)  # other routes are not counted
                numbers = await read_metrics(client)
            for refused in (one_topic, several):
                assert refused.status_code == 429
                assert refused.headers["retry-after"] == "5"
            stats = server.app.sse_limits.statistics()
            assert (stats.rejected_per_client, stats.max_per_client) == (2, 2)
    series = 'trio_stream_requests_refused_total{limit="sse_streams_per_client",status="429"}'
    assert numbers[series] == 2
    assert numbers["trio_stream_sse_clients"] == 1


async def test_publishing_is_rate_limited_per_address() -> None:
    with trio.fail_after(SAFETY):
        async with (
            running_demo(publish_rate=0.01, publish_burst=2) as server,
            demo_client(server) as client,
        ):
            await publish(client, "news", 1)
            await publish(client, "news", 2)
            refused = await client.post("/api/topics/news", json={"data": 3})
            assert (await client.get("/healthz")).status_code == 200  # reads are not limited
            numbers = await read_metrics(client)
    key = 'trio_stream_requests_refused_total{limit="publish_rate",status="429"}'
    assert numbers[key] == 1
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert server.app.publish_limit.statistics().limited == 1


async def test_cors_is_off_by_default_and_on_for_the_given_origins() -> None:
    preflight = {
        "origin": PAGE,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }
    with trio.fail_after(SAFETY):
        async with running_demo() as server, demo_client(server) as client:
            off = await client.get("/healthz", headers={"origin": PAGE})
            assert server.app.cors is None
        async with (
            running_demo(cors_origins=(PAGE,)) as server,
            demo_client(server) as client,
        ):
            allowed = await client.options("/api/topics/news", headers=preflight)
            refused = await client.options(
                "/api/topics/news", headers={**preflight, "origin": "https://evil.example"}
            )
            async with client.stream("GET", "/sse/news", headers={"origin": PAGE}) as stream:
                stream_origin = stream.headers.get("access-control-allow-origin")
    assert not any(name.startswith("access-control-") for name in off.headers)
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == PAGE
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers
    assert stream_origin == PAGE


async def test_streams_end_at_their_lifetime_and_readers_resume_without_gaps() -> None:
    rounds, per_round = 3, 4
    reconnects = 0
    reconnected = trio.Event()

    def on_reconnect(_: EventSourceStatistics) -> None:
        nonlocal reconnects, reconnected
        reconnects += 1
        reconnected.set()
        reconnected = trio.Event()

    got: list[str] = []
    with trio.fail_after(SAFETY):
        async with (
            running_demo(max_stream_lifetime=0.05, ticker_interval=0) as server,
            demo_client(server) as client,
        ):
            first = await publish(client, "life", -1)

            async def publisher() -> None:
                await trio.lowlevel.checkpoint()
                for round_ in range(rounds):
                    while reconnects < round_:  # the lifetime ended the last stream
                        await reconnected.wait()
                    for n in range(per_round):
                        await publish(client, "life", round_ * per_round + n)

            async with (
                open_event_source(
                    server.url + "/sse/life",
                    last_event_id=first,  # resumes: nothing published before is missed
                    backoff=Backoff(initial=0.001, maximum=0.01),
                    on_reconnect=on_reconnect,
                ) as source,
                trio.open_nursery() as nursery,
            ):
                nursery.start_soon(publisher)
                async for event in source:
                    got.append(event.data)
                    if len(got) == rounds * per_round:
                        break
    assert got == [str(n) for n in range(rounds * per_round)]
    assert reconnects >= rounds - 1


def test_the_command_line_options_reach_the_config() -> None:
    args = build_parser().parse_args(
        [
            "demo",
            "--cors-origin",
            PAGE,
            "--cors-origin",
            "http://localhost:3000",
            "--max-stream-lifetime",
            "300",
            "--max-sse-per-client",
            "8",
            "--publish-rate",
            "5",
        ]
    )
    config = config_from(args)
    assert config.cors_origins == (PAGE, "http://localhost:3000")
    assert config.max_stream_lifetime == 300.0
    assert (config.max_sse_per_client, config.publish_rate, config.publish_burst) == (8, 5.0, 20)
    defaults = config_from(build_parser().parse_args(["demo"]))
    assert defaults.cors_origins == ()
    assert defaults.max_stream_lifetime is None


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--cors-origin", "not-an-origin"],
        ["demo", "--cors-origin", "null"],
        ["demo", "--max-stream-lifetime", "0"],
        ["demo", "--max-stream-lifetime", "inf"],
        ["demo", "--max-sse-per-client", "0"],
        ["demo", "--publish-rate", "0"],
        ["demo", "--publish-rate", "inf"],
    ],
)
def test_bad_limit_options_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "error" in capsys.readouterr().err


async def test_a_refused_stream_is_not_an_error_for_other_clients() -> None:
    with trio.fail_after(SAFETY):
        async with (
            running_demo(max_sse_per_client=1) as server,
            demo_client(server) as client,
            sse_stream(client, "/sse/news"),
        ):
            assert (await client.get("/sse/news")).status_code == 429
            transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
            async with (
                httpx.AsyncClient(base_url=server.url, transport=transport) as other,
                sse_stream(other, "/sse/news") as reader,
            ):
                await reader.chunk()
