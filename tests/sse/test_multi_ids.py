"""Multi-topic SSE ids: the format, its size bound, rejection of bad ids, topic heads."""

from __future__ import annotations

import pytest
import trio

from trio_stream.core import Hub, MemoryBroker
from trio_stream.core._heads import topic_heads
from trio_stream.protocol import Event
from trio_stream.sse import TopicsEventId, max_topics_event_id_length
from trio_stream.sse._multi_ids import MAX_POSITION_LENGTH, TopicPositions, topic_set_digest

TOPICS = ("ticker", "jobs.42", "room:lobby")


def test_an_id_carries_every_position_and_the_event_topic() -> None:
    positions = ("3f9a0c1e-104", "3f9a0c1e-112", "3f9a0c1e-107")
    text = TopicsEventId(TOPICS, positions, 2).encode()
    assert text == f"m1;{topic_set_digest(TOPICS)};2;3f9a0c1e-1;04,12,07"
    parsed = TopicsEventId.parse(text, TOPICS)
    assert parsed == TopicsEventId(TOPICS, positions, 2)
    assert parsed is not None
    assert parsed.topic == "room:lobby"


def test_missing_positions_and_odd_characters_round_trip() -> None:
    positions = (None, "a;b,c!d%e f", "é:1-2")
    text = TopicsEventId(TOPICS, positions, 1).encode()
    entries = text.split(";")[4].split(",")
    assert len(entries) == 3
    assert entries[0] == "!"
    assert not any(c in entry for entry in entries[1:] for c in "! ")
    assert TopicsEventId.parse(text, TOPICS) == TopicsEventId(TOPICS, positions, 1)
    only_none = TopicsEventId(TOPICS, (None, None, None), 0).encode()
    assert only_none.endswith(";;!,!,!")
    assert TopicsEventId.parse(only_none, TOPICS) == TopicsEventId(TOPICS, (None,) * 3, 0)


def test_identical_positions_share_the_whole_prefix() -> None:
    text = TopicsEventId(("a", "b"), ("e-1", "e-1"), 0).encode()
    assert text.endswith(";e-1;,")
    assert TopicsEventId.parse(text, ("a", "b")) == TopicsEventId(("a", "b"), ("e-1", "e-1"), 0)


def test_an_id_of_another_topic_list_is_recognised_not_misread() -> None:
    text = TopicsEventId(TOPICS, ("e-1", "e-2", "e-3"), 0).encode()
    assert TopicsEventId.parse(text, tuple(reversed(TOPICS))) is None
    assert TopicsEventId.parse(text, TOPICS[:2]) is None
    assert TopicsEventId.parse("m1;00000000;0;;!,!", TOPICS) is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "3f9a0c1e-42",  # a single topic's id
        "m2;00000000;0;;!,!,!",
        "m1;00000000;0;!,!",  # too few parts
        "m1;0000000G;0;e-;1,2,3",
        "m1;DIGEST;01;e-;1,2,3",
        "m1;DIGEST;-1;e-;1,2,3",
        "m1;DIGEST;3;e-;1,2,3",  # index out of range
        "m1;DIGEST;0;e-;1,2",  # one entry short
        "m1;DIGEST;0;e-;1,2,3,4",
        "m1;DIGEST;0;e -;1,2,3",
        "m1;DIGEST;0;e-;1,2,3;",
        "m1;DIGEST;0;e-;1,2!,3",
        "m1;DIGEST;0;e-;1,%0A,3",  # decodes to a line break
        "m1;DIGEST;0;e-;1,%FF,3",  # not UTF-8
        "m1;DIGEST;0;;1,,3",  # an empty position
    ],
)
def test_malformed_ids_raise(text: str) -> None:
    with pytest.raises(ValueError, match="multi-topic"):
        TopicsEventId.parse(text.replace("DIGEST", topic_set_digest(TOPICS)), TOPICS)


def test_ids_stay_within_the_documented_bound() -> None:
    longest = "x" * MAX_POSITION_LENGTH
    for count in (1, 10, 32):
        topics = [f"t{i}" for i in range(count)]
        tracker = TopicPositions(topics, [longest[:-1] + str(i % 10) for i in range(count)])
        assert len(tracker.encode(count - 1)) <= max_topics_event_id_length(count)
    assert max_topics_event_id_length(32) == 2164
    with pytest.raises(ValueError, match="longer than 64"):
        TopicPositions(["a"], ["x" * 65])
    with pytest.raises(ValueError, match="longer than 64"):
        TopicPositions(["a"], ["e-1"]).advance(0, "é" * 11)  # 66 once percent-encoded
    with pytest.raises(ValueError, match="one position per topic"):
        TopicPositions(["a", "b"], ["e-1"])


def test_positions_advance_per_topic() -> None:
    tracker = TopicPositions(["a", "b"], [None, "e-5"])
    assert (tracker.position(0), tracker.position(1)) == (None, "e-5")
    tracker.advance(0, "e-7")
    assert tracker.position(0) == "e-7"
    assert tracker.encode(0).endswith(";0;e-;7,5")


async def test_memory_broker_heads_resume_every_topic_after_now() -> None:
    broker = MemoryBroker(epoch="ep")
    hub = Hub(broker)
    await hub.publish("a", Event("old"))
    heads = await topic_heads(broker, ["a", "fresh"])
    assert heads == ["ep-1", "ep-1"]
    await hub.publish("a", Event("new a"))
    await hub.publish("fresh", Event("new fresh"))
    for topic, expected in (("a", "new a"), ("fresh", "new fresh")):
        async with hub.subscribe(topic, last_event_id=heads[0]) as subscription:
            assert subscription.recovered
            assert [e.data for e in await subscription.receive_batch()] == [expected]


async def test_other_brokers_answer_for_themselves_or_have_no_head() -> None:
    class WithHead:
        async def head(self, topic: str) -> str | None:
            await trio.lowlevel.checkpoint()
            return None if topic == "empty" else f"{topic}@9"

    assert await topic_heads(WithHead(), ["a", "empty"]) == ["a@9", None]
    assert await topic_heads(object(), ["a", "b"]) == [None, None]
