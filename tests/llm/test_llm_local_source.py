"""`LocalTokenSource`: deterministic text and pacing (virtual time), usage, cancellation."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from trio_stream.llm import GenerationResult, LocalTokenSource
from trio_stream.llm._local import tokenize
from trio_stream.protocol import ChatDelta, ContentDelta, FinishDelta, ReasoningDelta, Usage

REQUEST: dict[str, Any] = {"messages": [{"role": "user", "content": "Tell me about streaming"}]}


async def collect(source: LocalTokenSource, request: dict[str, Any] = REQUEST) -> list[ChatDelta]:
    async with source.open_chat_stream(request) as stream:
        return [delta async for delta in stream]


def text_of(deltas: list[ChatDelta]) -> str:
    return "".join(d.text for d in deltas if isinstance(d, ContentDelta))


async def test_same_seed_same_answer_other_seed_other_answer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    first = await collect(LocalTokenSource(seed=1))
    again = await collect(LocalTokenSource(seed=1))
    other = await collect(LocalTokenSource(seed=2))
    assert first == again
    assert text_of(first) != text_of(other)
    assert text_of(first) == LocalTokenSource(seed=1).answer(REQUEST)
    assert text_of(first).startswith('You asked: "Tell me about streaming". ')
    assert first[-1] == FinishDelta("stop")


async def test_pacing_is_realistic_and_deterministic(
    autojump_clock: trio.testing.MockClock,
) -> None:
    source = LocalTokenSource(seed=3, tokens_per_second=50.0, first_token_delay=0.3)
    result = GenerationResult()
    start = trio.current_time()
    async with source.open_chat_stream(REQUEST, result=result) as stream:
        deltas = [delta async for delta in stream]
    tokens = sum(isinstance(d, ContentDelta) for d in deltas)
    assert result.time_to_first_token == pytest.approx(0.3)
    elapsed = trio.current_time() - start
    assert 0.3 + (tokens - 1) * 0.02 * 0.75 <= elapsed <= 0.3 + (tokens - 1) * 0.02 * 1.25
    assert result.delivered_tokens == tokens
    assert result.model == "trio-stream-local"


async def test_max_tokens_usage_and_reasoning(autojump_clock: trio.testing.MockClock) -> None:
    source = LocalTokenSource(reasoning=True)
    request = {**REQUEST, "max_tokens": 5, "stream_options": {"include_usage": True}}
    deltas = await collect(source, request)
    assert isinstance(deltas[0], ReasoningDelta)
    assert sum(isinstance(d, ContentDelta) for d in deltas) == 5
    assert deltas[-2] == FinishDelta("length")
    assert deltas[-1] == Usage(4, 5, 9)  # "Tell me about streaming" is 4 tokens
    assert [m["id"] for m in await source.list_models()] == ["trio-stream-local"]


async def test_odd_requests_still_get_an_answer(autojump_clock: trio.testing.MockClock) -> None:
    for request in ({}, {"messages": "x"}, {"messages": [{"role": "user", "content": 3}]}):
        odd: dict[str, Any] = {**request, "stream_options": {"include_usage": True}}
        deltas = await collect(LocalTokenSource(), odd)
        assert text_of(deltas)
        assert isinstance(deltas[-1], Usage)


async def test_leaving_early_stops_the_generator(autojump_clock: trio.testing.MockClock) -> None:
    result = GenerationResult()
    async with LocalTokenSource().open_chat_stream(REQUEST, result=result) as stream:
        await anext(stream)
        await anext(stream)
    assert result.status == "cancelled"
    assert result.delivered_tokens == 2
    assert result.ended_at is not None


def test_tokenize_keeps_the_text() -> None:
    assert tokenize("Hello, world - it's ok.") == [
        "Hello",
        ",",
        " world",
        " -",
        " it's",
        " ok",
        ".",
    ]


@pytest.mark.parametrize(
    "options",
    [{"tokens_per_second": 0}, {"first_token_delay": -1}, {"jitter": 2}, {"sentences": 0},
     {"max_tokens": 0}, {"capacity": 0}],
)  # fmt: skip
def test_bad_options(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=">="):
        LocalTokenSource(**options)
