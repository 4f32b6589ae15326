"""`ChatRelay` with the detach policy: answers outlive clients, resume exactly once, stop."""

from __future__ import annotations

import pytest
import trio
import trio.lowlevel

from tests.llm._llm_helpers import (
    UI_MESSAGE,
    USER_MESSAGE,
    chunk_text,
    data_of,
    open_fake_relay,
    ui_text,
)
from trio_stream.core import Hub
from trio_stream.llm import ANSWER_ID_HEADER, DetachedGenerations, GenerationResult
from trio_stream.protocol import DONE, Event
from trio_stream.testing import FakeOpenAI, SSEReader

TOKENS = [f" w{i}" for i in range(40)]


async def test_client_drops_and_resumes_with_last_id_exactly_once() -> None:
    fake = FakeOpenAI(TOKENS, delay=0.005)
    async with open_fake_relay(fake, hub=Hub()) as relay:
        body = {"id": "chat-9", "messages": [UI_MESSAGE]}
        async with relay.client.stream("POST", "/api/chat", json=body) as response:
            assert response.headers[ANSWER_ID_HEADER] == "chat-9"
            async with SSEReader(response) as reader:
                first = await reader.events(6)  # start, text-start, 4 deltas; then drop
        last_id = first[-1].id
        assert last_id
        headers = {"Last-Event-ID": last_id}
        async with relay.client.stream(
            "GET", "/api/chat/chat-9/stream", headers=headers
        ) as response:
            assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
            async with SSEReader(response) as reader:
                rest = await reader.rest()
        # A client that reconnects without an id (the AI SDK's resumeStream) gets it all.
        async with (
            relay.client.stream("GET", "/api/chat/chat-9/stream") as response,
            SSEReader(response) as reader,
        ):
            replay = await reader.rest()
    events = first + rest
    ids = [event.id for event in events]
    assert len(set(ids)) == len(ids)
    parts = data_of(events)
    assert ui_text(parts) == "".join(TOKENS)
    assert parts[-2:] == [{"type": "finish", "finishReason": "stop"}, DONE]
    assert [e.data for e in replay] == [e.data for e in events]
    assert fake.requests[0].completed  # the upstream was never cut
    assert not fake.requests[0].disconnected
    [result] = relay.results
    assert result.status == "finished"
    assert result.delivered_tokens == 40


async def test_openai_format_resumes_too() -> None:
    async with open_fake_relay(FakeOpenAI(TOKENS[:5]), hub=Hub()) as relay:
        body = {"messages": [USER_MESSAGE], "stream": True}
        async with relay.client.stream("POST", "/v1/chat/completions", json=body) as response:
            answer_id = response.headers[ANSWER_ID_HEADER]
            async with SSEReader(response) as reader:
                first = await reader.events(2)
        headers = {"Last-Event-ID": first[-1].id or ""}
        async with (
            relay.client.stream(
                "GET", f"/api/chat/{answer_id}/stream", headers=headers
            ) as response,
            SSEReader(response) as reader,
        ):
            rest = await reader.rest()
    chunks = data_of(first + rest)
    assert chunk_text(chunks) == "".join(TOKENS[:5])
    assert chunks[-1] == DONE


async def test_stop_endpoint_ends_the_answer_and_closes_the_upstream() -> None:
    fake = FakeOpenAI(TOKENS, hold_after=2)
    async with open_fake_relay(fake, hub=Hub()) as relay:
        body = {"id": "chat-stop", "messages": [UI_MESSAGE]}
        async with (
            relay.client.stream("POST", "/api/chat", json=body) as response,
            SSEReader(response) as reader,
        ):
            await reader.events(4)
            assert (await relay.client.post("/api/chat/chat-stop/stop")).status_code == 204
            tail = data_of(await reader.rest())
        with trio.fail_after(5):
            await fake.requests[0].ended.wait()
        assert (await relay.client.post("/api/chat/chat-stop/stop")).status_code == 404
    assert tail == [{"type": "text-end", "id": "text-1"}, {"type": "abort"}, DONE]
    assert fake.requests[0].disconnected
    assert relay.results[0].status == "cancelled"
    assert relay.results[0].delivered_tokens == 2


async def test_a_new_message_replaces_the_running_answer() -> None:
    fake = FakeOpenAI(TOKENS, hold_after=1)
    async with open_fake_relay(fake, hub=Hub()) as relay:
        body = {"id": "chat-r", "messages": [UI_MESSAGE]}
        async with (
            relay.client.stream("POST", "/api/chat", json=body) as first,
            SSEReader(first) as first_reader,
        ):
            await first_reader.events(3)
            async with (
                relay.client.stream("POST", "/api/chat", json=body) as second,
                SSEReader(second) as second_reader,
            ):
                assert data_of(await second_reader.events(3))[2]["delta"] == " w0"
            old_tail = data_of(await first_reader.rest())
    assert old_tail[-2:] == [{"type": "abort"}, DONE]
    assert fake.requests[0].disconnected


async def test_too_many_answers_is_503() -> None:
    fake = FakeOpenAI(TOKENS, hold_after=1)
    async with open_fake_relay(fake, hub=Hub(), max_active=1) as relay:
        body = {"id": "a1", "messages": [UI_MESSAGE]}
        async with (
            relay.client.stream("POST", "/api/chat", json=body) as response,
            SSEReader(response) as reader,
        ):
            await reader.events(3)
            other = await relay.client.post(
                "/api/chat", json={"id": "a2", "messages": [UI_MESSAGE]}
            )
            assert other.status_code == 503
            assert (await relay.client.post("/api/chat/a1/stop")).status_code == 204


async def test_upstream_failure_at_start_is_published_as_an_error() -> None:
    async with open_fake_relay(FakeOpenAI(status=500), hub=Hub()) as relay:
        body = {"id": "bad", "messages": [UI_MESSAGE]}
        async with (
            relay.client.stream("POST", "/api/chat", json=body) as response,
            SSEReader(response) as reader,
        ):
            parts = data_of(await reader.rest())
    assert [p if p == DONE else p["type"] for p in parts] == ["error", "finish", DONE]


async def test_resume_point_lost_ends_the_stream() -> None:
    hub = Hub()
    async with trio.open_nursery() as nursery:
        generations = DetachedGenerations(hub, retention=0)
        await nursery.start(generations.run)

        async def generate(generation: object, publish: object) -> None:
            await trio.sleep_forever()

        generation = await generations.start("g", GenerationResult(), generate)
        received: list[Event] = []

        async def emit(event: Event) -> None:  # pragma: no cover - must not be called
            received.append(event)
            await trio.lowlevel.checkpoint()

        assert not await generations.follow(generation, "unknown-7", emit)
        assert generations.active == 1
        assert generations.stop("g")
        assert not generations.stop("g")
        with trio.fail_after(5):
            await generation.done.wait()
        nursery.cancel_scope.cancel()
    assert received == []


async def never_called(generation: object, publish: object) -> None:  # pragma: no cover
    await trio.lowlevel.checkpoint()
    raise AssertionError("not started")


async def test_generations_need_run_and_sane_options() -> None:
    generations = DetachedGenerations(Hub())
    with pytest.raises(RuntimeError, match="run"):
        await generations.start("x", GenerationResult(), never_called)
    with pytest.raises(ValueError, match="max_active"):
        DetachedGenerations(Hub(), max_active=0)
