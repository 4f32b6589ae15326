"""Smaller pieces of the LLM layer, in memory: lifespan, body reading, batching, completion."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing

from trio_stream.llm import (
    ChatRelay,
    GenerationResult,
    LocalTokenSource,
    UpstreamStreamError,
    open_delta_stream,
)
from trio_stream.llm._requests import collect_completion, read_json_body
from trio_stream.protocol import (
    ChatDelta,
    ContentDelta,
    FinishDelta,
    ToolCallDelta,
    TrioStreamError,
)


def scripted(messages: list[dict[str, Any]]) -> Callable[[], Any]:
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        await trio.lowlevel.checkpoint()
        return queue.pop(0)

    return receive


async def record(sent: list[MutableMapping[str, Any]], message: MutableMapping[str, Any]) -> None:
    sent.append(message)
    await trio.lowlevel.checkpoint()


async def test_every_endpoint_answers_lifespan() -> None:
    relay = ChatRelay(LocalTokenSource())
    for endpoint in (
        relay.chat_completions,
        relay.ui_chat,
        relay.models,
        relay.resume,
        relay.stop,
    ):
        sent: list[MutableMapping[str, Any]] = []
        receive = scripted([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
        await endpoint({"type": "lifespan"}, receive, partial(record, sent))
        assert [m["type"] for m in sent] == [
            "lifespan.startup.complete",
            "lifespan.shutdown.complete",
        ]


async def test_client_gone_during_the_body() -> None:
    receive = scripted(
        [{"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}]
    )
    assert await read_json_body(receive, 100) is None
    relay = ChatRelay(LocalTokenSource())
    for endpoint in (relay.chat_completions, relay.ui_chat):
        sent: list[object] = []
        await endpoint({"type": "http"}, scripted([{"type": "http.disconnect"}]), sent.append)  # type: ignore[arg-type]
        assert sent == []


def producer_of(deltas: list[ChatDelta], error: Exception | None = None) -> Any:
    async def produce(
        send_channel: trio.MemorySendChannel[ChatDelta], started: Callable[[], None]
    ) -> None:
        started()
        for delta in deltas:
            await send_channel.send(delta)
        await trio.lowlevel.checkpoint()
        if error is not None:
            raise error

    return produce


async def test_collect_completion_joins_tool_calls() -> None:
    deltas: list[ChatDelta] = [
        ContentDelta("x", choice=1),
        ToolCallDelta(0, "call_1", "weather", '{"city":'),
        ToolCallDelta(0, None, None, '"Oslo"}'),
        FinishDelta("tool_calls"),
    ]
    result = GenerationResult(id="a")
    async with open_delta_stream(producer_of(deltas), result=result) as stream:
        completion = await collect_completion(stream, result)
    message = completion["choices"][0]["message"]
    assert message["content"] == ""
    assert message["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
        }
    ]
    assert completion["choices"][0]["finish_reason"] == "tool_calls"
    assert completion["usage"] == {"completion_tokens": 3}


async def test_receive_batch_window_and_errors(autojump_clock: trio.testing.MockClock) -> None:
    deltas: list[ChatDelta] = [ContentDelta(str(i)) for i in range(5)]
    error = UpstreamStreamError("boom")
    async with open_delta_stream(producer_of(deltas, error), capacity=8) as stream:
        assert len(await stream.receive_batch(3, window=1.0)) == 3
        assert len(await stream.receive_batch(10, window=1.0)) == 2
        with pytest.raises(UpstreamStreamError):
            await stream.receive_batch()
        assert stream.statistics().max_buffer_size == 8
    assert stream.result.status == "failed"
    with pytest.raises(ValueError, match="capacity"):
        async with open_delta_stream(producer_of([]), capacity=0):
            pass  # pragma: no cover


async def test_body_errors_come_out_unwrapped() -> None:
    with pytest.raises(KeyError):
        async with open_delta_stream(producer_of([])):
            raise KeyError("mine")


def test_a_failing_callback_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    def explode(result: GenerationResult) -> None:
        raise RuntimeError("callback bug")

    relay = ChatRelay(LocalTokenSource(), on_result=explode)
    relay._report(GenerationResult(started_at=0.0))
    assert "on_result callback failed" in caplog.text


async def test_several_failures_become_one_library_error() -> None:
    async def produce(
        send_channel: trio.MemorySendChannel[ChatDelta], started: Callable[[], None]
    ) -> None:
        started()
        await trio.lowlevel.checkpoint()
        raise OSError("producer bug")

    async def body_fails_too() -> None:
        async with open_delta_stream(produce):
            with trio.CancelScope(shield=True):
                await trio.testing.wait_all_tasks_blocked()  # the producer fails meanwhile
            raise KeyError("body too")

    with pytest.raises(TrioStreamError, match="failed") as info:
        await body_fails_too()
    assert isinstance(info.value.__cause__, BaseExceptionGroup)
