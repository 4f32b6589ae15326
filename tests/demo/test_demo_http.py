"""The demo's HTTP surface (DESIGN §11) against the real server on port 0."""

from __future__ import annotations

import json

import pytest
import trio

from tests.demo._demo_helpers import (
    SAFETY,
    data_of,
    demo_client,
    publish,
    read_metrics,
    running_demo,
    sse_stream,
)
from trio_stream.demo import RESET_EVENT, TICKER_EVENT


async def test_healthz_answers_ok() -> None:
    async with running_demo() as server, demo_client(server) as client:
        response = await client.get("/healthz")
        head = await client.head("/healthz")
    assert (response.status_code, response.text) == (200, "ok")
    assert head.status_code == 200
    assert head.content == b""


async def test_page_carries_its_config_and_a_content_security_policy() -> None:
    async with running_demo(token="s3cret") as server, demo_client(server) as client:
        page = await client.get("/")
        script = await client.get("/static/app.js")
        style = await client.get("/static/demo.css")
        missing = await client.get("/static/nope.js")
        traversal = await client.get("/static/..%2F_app.py")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    start = page.text.index('id="demo-config">') + len('id="demo-config">')
    config = json.loads(page.text[start : page.text.index("</script>", start)])
    assert config == {
        "wsPort": server.ws_port,
        "tokenRequired": True,
        "tickerTopic": "ticker",
        "tickerInterval": 0.05,
    }
    assert "s3cret" not in page.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert "startTicker" in script.text
    assert style.headers["content-type"].startswith("text/css")
    assert missing.status_code == traversal.status_code == 404


async def test_unknown_route_is_404_and_wrong_method_405() -> None:
    async with running_demo() as server, demo_client(server) as client:
        unknown = await client.get("/nope")
        wrong = await client.get("/api/jobs")
    assert unknown.status_code == 404
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"


async def test_published_event_reaches_a_subscriber_with_its_id() -> None:
    async with (
        running_demo(ticker_interval=0) as server,
        demo_client(server) as client,
        sse_stream(client, "/sse/news") as reader,
    ):
        first = await publish(client, "news", "plain text", event="headline")
        second = await publish(client, "news", {"n": 2})
        with trio.fail_after(SAFETY):
            events = await reader.events(2)
    assert [(e.id, e.event, e.data) for e in events] == [
        (first, "headline", "plain text"),
        (second, "message", '{"n":2}'),
    ]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"[1, 2]", 400),
        (b'{"event": "x"}', 400),
        (b'{"data": 1, "event": 7}', 400),
        (b'{"data": 1, "event": "two\\nlines"}', 400),
        (b'{"data": "' + b"x" * (1024 * 1024) + b'"}', 413),
    ],
    ids=["not-json", "not-object", "no-data", "event-not-str", "event-newline", "too-large"],
)
async def test_publish_refuses_bad_bodies(body: bytes, status: int) -> None:
    async with running_demo(ticker_interval=0) as server, demo_client(server) as client:
        response = await client.post("/api/topics/news", content=body)
        after = await client.get("/healthz")
    assert response.status_code == status
    assert "message" in response.json()["error"]
    assert after.status_code == 200  # the server keeps serving


async def test_invalid_topic_is_400_for_publish_and_subscribe() -> None:
    async with running_demo(ticker_interval=0) as server, demo_client(server) as client:
        published = await client.post("/api/topics/a%20b", json={"data": 1})
        subscribed = await client.get("/sse/bad*topic")
    assert published.status_code == subscribed.status_code == 400


async def test_token_protects_writes_but_not_reads() -> None:
    token = {"authorization": "Bearer s3cret"}
    wrong = {"authorization": "Bearer nope"}
    chat = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    async with (
        running_demo(token="s3cret", ticker_interval=0) as server,
        demo_client(server) as client,
    ):
        refused = await client.post("/api/topics/news", json={"data": 1})
        refused_wrong = await client.post("/api/topics/news", json={"data": 1}, headers=wrong)
        refused_job = await client.post("/api/jobs")
        refused_llm = await client.post("/v1/chat/completions", json=chat)
        allowed = await client.post("/api/topics/news", json={"data": 1}, headers=token)
        models = await client.get("/v1/models")
        async with sse_stream(client, "/sse/news?last_event_id=x") as reader:
            with trio.fail_after(SAFETY):
                (reset,) = await reader.events(1)
    for response in (refused, refused_wrong, refused_job, refused_llm):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
    assert allowed.status_code == 201
    assert models.status_code == 200
    assert reset.event == "reset"


async def test_resume_from_last_event_id_replays_what_was_missed() -> None:
    async with running_demo(ticker_interval=0) as server, demo_client(server) as client:
        ids = [await publish(client, "news", n) for n in range(4)]
        async with sse_stream(client, "/sse/news", headers={"last-event-id": ids[1]}) as reader:
            with trio.fail_after(SAFETY):
                replayed = await reader.events(2)
        async with sse_stream(client, f"/sse/news?last_event_id={ids[2]}") as reader:
            with trio.fail_after(SAFETY):
                (query_replayed,) = await reader.events(1)
        stats = await read_metrics(client)
    assert [e.id for e in replayed] == ids[2:]
    assert query_replayed.id == ids[3]
    assert stats['trio_stream_resumes_total{transport="sse",outcome="recovered"}'] == 2


async def test_unknown_last_event_id_gets_a_reset_event_first() -> None:
    async with running_demo(ticker_interval=0) as server, demo_client(server) as client:
        headers = {"last-event-id": "0000-99"}  # another epoch: a restarted server's id
        async with sse_stream(client, "/sse/news", headers=headers) as reader:
            live = await publish(client, "news", "after the restart")
            with trio.fail_after(SAFETY):
                reset, event = await reader.events(2)
        stats = await read_metrics(client)
    assert (reset.event, reset.data) == ("reset", RESET_EVENT.data)
    assert event.id == live
    assert stats['trio_stream_resumes_total{transport="sse",outcome="reset"}'] == 1


async def test_ticker_publishes_numbered_ticks() -> None:
    async with (
        running_demo() as server,
        demo_client(server) as client,
        sse_stream(client, "/sse/ticker") as reader,
    ):
        with trio.fail_after(SAFETY):
            ticks = await reader.events(3)
    assert {tick.event for tick in ticks} == {TICKER_EVENT}
    seqs = [data_of(tick)["seq"] for tick in ticks]
    assert seqs == list(range(seqs[0], seqs[0] + 3))
    assert all(isinstance(data_of(tick)["value"], float) for tick in ticks)
