"""The answer feed: deltas pulled by the stream's writer, nothing lost to cancellation."""

from __future__ import annotations

import json

import trio
import trio.testing

from trio_stream.llm import GenerationResult
from trio_stream.llm._relay import AnswerFeed, Formatter, RelayFormat
from trio_stream.llm._stream import ChatStream
from trio_stream.protocol import DONE, ChatDelta, ContentDelta, Event, FinishDelta, Usage


def open_stream(capacity: int = 16) -> tuple[trio.MemorySendChannel[ChatDelta], ChatStream]:
    send_channel, receive_channel = trio.open_memory_channel[ChatDelta](capacity)
    return send_channel, ChatStream(receive_channel, GenerationResult(id="a1"))


def contents(events: list[Event]) -> list[str]:
    """The text of the OpenAI chunks among ``events`` (role chunk and [DONE] skipped)."""
    texts = []
    for event in events:
        data = event.data
        if data == DONE:
            continue
        for choice in json.loads(data)["choices"]:
            if choice["delta"].get("content"):
                texts.append(choice["delta"]["content"])
    return texts


async def test_a_cancelled_window_keeps_what_it_took(autojump_clock: trio.abc.Clock) -> None:
    send_channel, stream = open_stream()
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:

            async def cancel_after_two() -> None:
                await send_channel.send(ContentDelta("a"))
                await send_channel.send(ContentDelta("b"))
                await trio.testing.wait_all_tasks_blocked()
                scope.cancel()

            nursery.start_soon(cancel_after_two)
            await stream.receive_batch(8, window=10.0)
    assert scope.cancelled_caught
    assert stream.queued() == 2
    assert stream.result.delivered_tokens == 0  # not counted until delivered
    await send_channel.send(ContentDelta("c"))
    batch = await stream.receive_batch(8)
    assert [d.text for d in batch if isinstance(d, ContentDelta)] == ["a", "b", "c"]
    assert stream.result.delivered_tokens == 3


async def test_held_deltas_come_first_when_iterating(autojump_clock: trio.abc.Clock) -> None:
    send_channel, stream = open_stream()
    await send_channel.send(ContentDelta("a"))
    with trio.move_on_after(1.0):
        await stream.receive_batch(8, window=10.0)  # the deadline cancels the window
    await send_channel.send(ContentDelta("b"))
    first = await stream.__anext__()
    second = await stream.__anext__()
    assert [first, second] == [ContentDelta("a"), ContentDelta("b")]


async def test_take_queued_takes_held_then_queued_without_waiting() -> None:
    send_channel, stream = open_stream()
    for text in "abc":
        send_channel.send_nowait(ContentDelta(text))
    assert stream.take_queued(2) == [ContentDelta("a"), ContentDelta("b")]
    assert stream.take_queued(8) == [ContentDelta("c")]
    assert stream.take_queued(8) == []
    send_channel.close()
    assert stream.take_queued(8) == []  # the end is left to receive_batch
    assert await stream.receive_batch(8) == []
    assert stream.result.status == "finished"


async def test_first_batch_carries_the_opening_and_the_tokens_already_here() -> None:
    send_channel, stream = open_stream()
    send_channel.send_nowait(ContentDelta("Hel"))
    send_channel.send_nowait(ContentDelta("lo"))
    feed = AnswerFeed(stream, Formatter(RelayFormat.OPENAI, "a1", "m"))
    assert feed.backlog() == (3, 16)  # the opening event and two deltas
    first = await feed.next_batch(64)
    assert json.loads(first[0].data)["choices"][0]["delta"]["role"] == "assistant"
    assert contents(first) == ["Hello"]  # neighbours merged into one chunk
    assert stream.result.delivered_tokens == 2


async def test_a_batch_that_makes_no_event_does_not_end_the_answer(
    autojump_clock: trio.abc.Clock,
) -> None:
    send_channel, stream = open_stream()
    # In the AI SDK format a usage delta makes no part: the feed waits for more.
    feed = AnswerFeed(stream, Formatter(RelayFormat.AI_SDK, "a1", "m"))
    await feed.next_batch(64)  # the opening
    async with trio.open_nursery() as nursery:

        async def upstream() -> None:
            await send_channel.send(Usage(prompt_tokens=1, completion_tokens=1, total_tokens=2))
            await trio.testing.wait_all_tasks_blocked()
            await send_channel.send(ContentDelta("x"))
            await send_channel.send(FinishDelta("stop"))
            send_channel.close()

        nursery.start_soon(upstream)
        batches = []
        for _ in range(10):  # bounded: the answer ends within a few batches
            batch = await feed.next_batch(64)
            if not batch:
                break
            batches.append(batch)
    parts = [event.data for batch in batches for event in batch]
    assert parts[-1] == DONE
    types = [json.loads(part)["type"] for part in parts[:-1]]
    assert types == ["text-start", "text-delta", "text-end", "finish"]
    assert stream.result.usage is not None


async def test_cancelled_next_batch_loses_no_token(autojump_clock: trio.abc.Clock) -> None:
    """A keepalive (or any cancel) landing in a coalescing window takes nothing away."""
    send_channel, stream = open_stream()
    feed = AnswerFeed(stream, Formatter(RelayFormat.OPENAI, "a1", "m"), coalesce_window=5.0)
    await feed.next_batch(64)  # the opening
    await send_channel.send(ContentDelta("one"))
    with trio.move_on_after(1.0) as scope:  # inside the 5 s window
        await feed.next_batch(64)
    assert scope.cancelled_caught
    await send_channel.send(ContentDelta(" two"))
    send_channel.close()
    events = await feed.next_batch(64)
    assert contents(events) == ["one two"]
    assert await feed.next_batch(64) == [Formatter(RelayFormat.OPENAI, "a1", "m").closing()[0]]
    assert await feed.next_batch(64) == []
