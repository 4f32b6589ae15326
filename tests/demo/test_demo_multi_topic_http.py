"""``GET /sse?topic=a&topic=b``: several topics on one SSE stream of the demo."""

from __future__ import annotations

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
from trio_stream.protocol import Event
from trio_stream.sse import TopicsEventId


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?other=x",
        "?topic=bad*name",
        "?topic=a&topic=a",
        "?" + "&".join(f"topic=t{i}" for i in range(33)),
    ],
    ids=["none", "no-topic-param", "bad-name", "duplicate", "too-many"],
)
async def test_bad_topic_lists_get_400(query: str) -> None:
    async with running_demo(ticker_interval=0) as server, demo_client(server) as client:
        response = await client.get("/sse" + query)
    assert response.status_code == 400


async def test_two_topics_arrive_on_one_stream_and_resume_together() -> None:
    topics = ["news", "sport"]
    with trio.fail_after(SAFETY):
        async with running_demo(ticker_interval=0) as server, demo_client(server) as client:
            async with sse_stream(client, "/sse?topic=news&topic=sport") as reader:
                await publish(client, "news", {"n": 1})
                await publish(client, "sport", {"n": 2})
                first = await reader.events(2)
                during = await read_metrics(client)
            # Published while no one listened: the composite id resumes both topics.
            await publish(client, "sport", {"n": 3})
            await publish(client, "news", {"n": 4})
            last_id = first[-1].id
            assert last_id is not None
            headers = {"last-event-id": last_id}
            async with sse_stream(client, "/sse?topic=news&topic=sport", headers) as reader:
                resumed = await reader.events(2)

    def topic_and_data(events: list[Event]) -> list[tuple[str, object]]:
        parsed = [TopicsEventId.parse(event.id or "", topics) for event in events]
        return [(i.topic if i else "?", data_of(e)) for i, e in zip(parsed, events, strict=True)]

    assert topic_and_data(first) == [("news", {"n": 1}), ("sport", {"n": 2})]
    # Replayed per topic: the two topics' backlogs may interleave either way.
    assert sorted(topic_and_data(resumed), key=str) == [("news", {"n": 4}), ("sport", {"n": 3})]
    assert during['trio_stream_connections_open{transport="sse"}'] == 1
