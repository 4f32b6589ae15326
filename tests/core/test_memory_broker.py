"""MemoryBroker: ids with an epoch, bounded history (count and age), replay."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

from trio_stream.core import (
    MAX_TOPIC_LENGTH,
    History,
    InvalidTopicError,
    MemoryBroker,
    validate_topic,
)
from trio_stream.protocol import Event


@pytest.mark.parametrize("name", ["ticker", "jobs.42", "room:lobby", "a-b_c", "x" * 200])
def test_valid_topics_pass_unchanged(name: str) -> None:
    assert validate_topic(name) == name


@pytest.mark.parametrize(
    "name", ["", "a b", "a/b", "x" * (MAX_TOPIC_LENGTH + 1), "é", "a\n", None, 3]
)
def test_invalid_topics_raise_a_value_error_and_log(
    name: object, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.INFO, logger="trio_stream.core"),
        pytest.raises(InvalidTopicError) as info,
    ):
        validate_topic(name)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert "invalid topic" in caplog.text
    if isinstance(name, str) and name:
        assert name not in caplog.text  # untrusted input is not echoed


def test_history_validates() -> None:
    assert History() == History(max_events=1000, max_age=3600.0)
    for bad in ({"max_events": -1}, {"max_age": 0}, {"max_age": float("inf")}):
        with pytest.raises(ValueError, match="max_"):
            History(**bad)


def test_epoch_is_random_per_instance_or_validated() -> None:
    assert MemoryBroker().epoch != MemoryBroker().epoch
    assert MemoryBroker(epoch="abc1").epoch == "abc1"
    for bad in ("", "a-b", "x" * 17, "a\n"):
        with pytest.raises(ValueError, match="epoch"):
            MemoryBroker(epoch=bad)


async def test_ids_increase_carry_the_epoch_and_are_valid_sse_ids() -> None:
    broker = MemoryBroker(epoch="e1")
    ids = [(await broker.publish(t, Event("x"))).id for t in ("a", "b", "a")]
    assert ids == ["e1-1", "e1-2", "e1-3"]
    for event_id in ids:
        assert event_id is not None
        assert not set(event_id) & {"\r", "\n", "\0"}
    assert broker.position("e1-3") == (3,)


@pytest.mark.parametrize(
    "event_id", ["", "e1", "e1-", "e2-1", "e1-01", "e1-x", "e1--1", "e1-\u0661", "e1-" + "9" * 20]
)
def test_position_rejects_what_the_broker_never_issued(event_id: str) -> None:
    assert MemoryBroker(epoch="e1").position(event_id) is None


async def test_replay_returns_events_after_the_id_in_order() -> None:
    broker = MemoryBroker(epoch="e")
    events = [await broker.publish("t", Event(str(n))) for n in range(5)]
    await broker.publish("other", Event("noise"))
    replayed = await broker.replay("t", "e-2")
    assert replayed == events[2:]
    assert await broker.replay("t", "e-5") == []
    assert await broker.replay("t", "e-0") == events  # "before everything" is a position


async def test_replay_of_unknown_ids_is_none() -> None:
    broker = MemoryBroker(epoch="e")
    await broker.publish("t", Event("a"))
    assert await broker.replay("t", "other-1") is None  # another epoch (a restart)
    assert await broker.replay("t", "garbage") is None
    assert await broker.replay("t", "e-99") is None  # never issued


async def test_history_is_bounded_by_count() -> None:
    broker = MemoryBroker(History(max_events=3), epoch="e")
    events = [await broker.publish("t", Event(str(n))) for n in range(6)]
    assert broker.statistics().retained == 3
    assert await broker.replay("t", "e-3") == events[3:]  # 3 newer events: all kept
    assert await broker.replay("t", "e-2") is None  # event 3 was forgotten


async def test_history_is_bounded_by_age(autojump_clock: trio.testing.MockClock) -> None:
    broker = MemoryBroker(History(max_events=100, max_age=10.0), epoch="e")
    first = await broker.publish("t", Event("old"))
    await trio.sleep(6)
    second = await broker.publish("t", Event("newer"))
    await trio.sleep(6)  # `first` is 12 s old now, `second` 6 s
    assert await broker.replay("t", "e-0") is None
    assert first.id is not None
    assert await broker.replay("t", first.id) == [second]


async def test_zero_history_resumes_only_from_the_latest_id() -> None:
    broker = MemoryBroker(History(max_events=0), epoch="e")
    await broker.publish("t", Event("a"))
    await broker.publish("t", Event("b"))
    assert await broker.replay("t", "e-2") == []
    assert await broker.replay("t", "e-1") is None
    assert broker.statistics().retained == 0


async def test_idle_topics_are_swept_and_then_unknown(
    autojump_clock: trio.testing.MockClock,
) -> None:
    broker = MemoryBroker(History(max_age=10.0), epoch="e")
    await broker.publish("idle", Event("a"))
    await trio.sleep(30)
    await broker.publish("busy", Event("b"))  # first sweep is only scheduled
    await trio.sleep(6)
    await broker.publish("busy", Event("c"))  # sweeps: "idle" expired, forgotten
    stats = broker.statistics()
    assert (stats.topics, stats.retained, stats.published) == (1, 2, 3)
    # Before the forgotten position, a topic without a log is unknown (what
    # was forgotten may have been on it)...
    assert await broker.replay("idle", "e-0") is None
    assert await broker.replay("never", "e-0") is None
    # ...from it on, nothing was published since: the client saw everything.
    assert await broker.replay("idle", "e-1") == []
    assert await broker.replay("never", "e-1") == []
    assert await broker.replay("never", "e-3") == []


async def test_a_topic_recreated_after_sweep_does_not_resume_across_the_gap(
    autojump_clock: trio.testing.MockClock,
) -> None:
    broker = MemoryBroker(History(max_age=10.0), epoch="e")
    await broker.publish("t", Event("a"))  # e-1
    await trio.sleep(20)
    await broker.publish("x", Event("b"))  # e-2: schedules the sweep
    await trio.sleep(6)
    await broker.publish("x", Event("c"))  # e-3: sweeps "t"
    await broker.publish("t", Event("d"))  # e-4: "t" again
    assert await broker.replay("t", "e-0") is None
    assert [e.data for e in await broker.replay("t", "e-1") or []] == ["d"]


def test_bind_refuses_a_second_hub() -> None:
    class Sink:
        def deliver(self, topic: str, event: Event) -> None:
            pass

        async def wait_for_room(self, topic: str) -> None:
            await trio.lowlevel.checkpoint()

        def disconnect_subscribers(self, topic: str, reason: str) -> int:
            return 0

    broker = MemoryBroker()
    sink = Sink()
    broker.bind(sink)
    broker.bind(sink)  # same one: fine
    with pytest.raises(RuntimeError, match="another Hub"):
        broker.bind(Sink())


async def test_run_reports_ready_and_sleeps() -> None:
    broker = MemoryBroker()
    async with trio.open_nursery() as nursery:
        await nursery.start(broker.run)
        await broker.watch("t")
        broker.unwatch("t")
        nursery.cancel_scope.cancel()
    assert broker.history == History()
