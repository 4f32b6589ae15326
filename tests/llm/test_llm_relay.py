"""`ChatRelay` with the cancel-on-disconnect policy: both wire formats, errors, cancellation."""

from __future__ import annotations

import pytest
import trio

from tests.llm._llm_helpers import (
    UI_MESSAGE,
    USER_MESSAGE,
    chunk_text,
    data_of,
    open_fake_relay,
    open_relay,
    ui_text,
)
from trio_stream.llm import ANSWER_ID_HEADER, ChatRelay, LocalTokenSource
from trio_stream.protocol import DONE
from trio_stream.testing import FakeOpenAI, SSEReader

TOKENS = ["Hel", "lo", ", ", "wörld", "!"]


async def test_openai_stream_relays_chunks_usage_and_done() -> None:
    async with open_fake_relay(FakeOpenAI(TOKENS)) as relay:
        body = {"model": "fake-model", "messages": [USER_MESSAGE], "stream": True}
        async with relay.client.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            answer_id = response.headers[ANSWER_ID_HEADER]
            async with SSEReader(response) as reader:
                chunks = data_of(await reader.rest())
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunk_text(chunks) == "Hello, wörld!"
    assert chunks[-1] == DONE
    assert chunks[-2]["choices"] == []
    assert chunks[-2]["usage"]["completion_tokens"] == 5
    assert chunks[-3]["choices"][0]["finish_reason"] == "stop"
    assert {c["id"] for c in chunks[:-1]} == {f"chatcmpl-{answer_id}"}
    [result] = relay.results
    assert result.id == answer_id
    assert result.status == "finished"
    assert result.delivered_tokens == 5


async def test_openai_non_streaming_completion() -> None:
    async with open_fake_relay(FakeOpenAI(TOKENS, reasoning=["r"])) as relay:
        response = await relay.client.post(
            "/v1/chat/completions", json={"messages": [USER_MESSAGE]}
        )
    answer = response.json()
    assert response.status_code == 200
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"] == {
        "role": "assistant",
        "content": "Hello, wörld!",
        "reasoning_content": "r",
    }
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["usage"]["completion_tokens"] == 5
    assert relay.results[0].status == "finished"


async def test_ai_sdk_stream_part_sequence() -> None:
    async with open_fake_relay(FakeOpenAI(TOKENS)) as relay:
        body = {"id": "chat-1", "messages": [UI_MESSAGE], "trigger": "submit-message"}
        async with relay.client.stream("POST", "/api/chat", json=body) as response:
            assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
            assert response.headers[ANSWER_ID_HEADER] == "chat-1"
            async with SSEReader(response) as reader:
                parts = data_of(await reader.rest())
    kinds = [p if p == DONE else p["type"] for p in parts]
    # Tokens queued together are merged into one delta: 1 to 5 of them.
    deltas = kinds.count("text-delta")
    assert 1 <= deltas <= 5
    assert kinds == ["start", "text-start", *["text-delta"] * deltas, "text-end", "finish", DONE]
    assert parts[0] == {"type": "start", "messageId": "chat-1"}
    assert ui_text(parts) == "Hello, wörld!"
    assert parts[-2] == {"type": "finish", "finishReason": "stop"}


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat"])
async def test_mid_stream_error_is_sanitised(path: str) -> None:
    fake = FakeOpenAI(TOKENS, error_after=2, error_message="secret internal detail")
    async with open_fake_relay(fake, error_message="The model failed.") as relay:
        message = USER_MESSAGE if path.startswith("/v1") else UI_MESSAGE
        body = {"messages": [message], "stream": True}
        async with (
            relay.client.stream("POST", path, json=body) as response,
            SSEReader(response) as reader,
        ):
            events = data_of(await reader.rest())
    assert "secret" not in repr(events)
    assert events[-1] == DONE
    if path == "/api/chat":
        assert ui_text(events) == "Hello"
        assert events[-4:-1] == [
            {"type": "text-end", "id": "text-1"},
            {"type": "error", "errorText": "The model failed."},
            {"type": "finish", "finishReason": "error"},
        ]
    else:
        assert chunk_text(events) == "Hello"
        assert events[-2] == {"error": {"message": "The model failed.", "type": "upstream_error"}}
    assert relay.results[0].status == "failed"


@pytest.mark.parametrize("stream", [True, False])
async def test_upstream_failure_before_streaming_is_502(stream: bool) -> None:
    async with open_fake_relay(FakeOpenAI(status=500, error_message="secret")) as relay:
        body = {"messages": [USER_MESSAGE], "stream": stream}
        response = await relay.client.post("/v1/chat/completions", json=body)
    assert response.status_code == 502
    assert "secret" not in response.text
    assert response.json()["error"]["type"] == "upstream_error"


@pytest.mark.parametrize(
    ("path", "content", "status"),
    [
        ("/v1/chat/completions", b"{", 400),
        ("/v1/chat/completions", b"[]", 400),
        ("/v1/chat/completions", b'{"messages": []}', 400),
        ("/v1/chat/completions", b'{"messages": [1]}', 400),
        ("/v1/chat/completions", b'{"messages": [{"role": "user"}], "stream": "yes"}', 400),
        ("/api/chat", b'{"messages": [{"role": "robot", "parts": []}]}', 400),
        ("/api/chat", b"x" * 2000, 413),
    ],
)
async def test_bad_requests(path: str, content: bytes, status: int) -> None:
    async with open_relay(LocalTokenSource(), max_body_size=1000) as relay:
        response = await relay.client.post(path, content=content)
    assert response.status_code == status
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_models_and_unknown_routes() -> None:
    async with open_fake_relay(FakeOpenAI(model="m1")) as relay:
        models = (await relay.client.get("/v1/models")).json()
        assert models["data"][0]["id"] == "m1"
        assert (await relay.client.get("/nope")).status_code == 404
        assert (await relay.client.get("/v1/chat/completions")).status_code == 405
        assert (await relay.client.get("/api/chat/x/stream")).status_code == 204
        assert (await relay.client.post("/api/chat/x/stop")).status_code == 404
        relay.relay.upstream.base_url += "/gone"  # type: ignore[attr-defined]
        assert (await relay.client.get("/v1/models")).status_code == 502


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat"])
async def test_client_closing_after_three_tokens_closes_the_upstream(path: str) -> None:
    fake = FakeOpenAI([f" t{i}" for i in range(300)], delay=0.01)
    async with open_fake_relay(fake) as relay:
        message = USER_MESSAGE if path.startswith("/v1") else UI_MESSAGE
        body = {"messages": [message], "stream": True}
        async with (
            relay.client.stream("POST", path, json=body) as response,
            SSEReader(response) as reader,
        ):
            opening = 2 if path == "/api/chat" else 1  # start + text-start / role chunk
            seen = data_of(await reader.events(opening + 3))
        assert (ui_text(seen) or chunk_text(seen)) == " t0 t1 t2"
        with trio.fail_after(5):
            await fake.requests[0].ended.wait()
            await relay.server.wait_idle()
        upstream = fake.requests[0]
        assert upstream.disconnected
        assert not upstream.completed
        sent_at_close = upstream.tokens_sent
        assert sent_at_close < 300
    assert upstream.tokens_sent == sent_at_close  # nothing more after the close
    [result] = relay.results
    assert result.status == "cancelled"
    assert result.delivered_tokens >= 3


async def test_non_streaming_client_disconnect_cancels_the_upstream() -> None:
    fake = FakeOpenAI(hold_after=1)
    async with open_fake_relay(fake) as relay:
        with trio.move_on_after(0.5):  # the answer never completes; give up as a client
            await relay.client.post("/v1/chat/completions", json={"messages": [USER_MESSAGE]})
        with trio.fail_after(5):
            await fake.requests[0].ended.wait()
            await relay.server.wait_idle()
    assert fake.requests[0].disconnected
    assert relay.results[0].status == "cancelled"


async def test_local_source_with_coalescing() -> None:
    source = LocalTokenSource(seed=7, tokens_per_second=1000.0, first_token_delay=0.0)
    request = {"messages": [USER_MESSAGE]}
    expected = source.answer(request)
    async with open_relay(source, coalesce_window=0.05) as relay:
        body = {"messages": [USER_MESSAGE], "stream": True}
        async with (
            relay.client.stream("POST", "/v1/chat/completions", json=body) as response,
            SSEReader(response) as reader,
        ):
            chunks = data_of(await reader.rest())
    assert chunk_text(chunks) == expected
    content_chunks = [c for c in chunks[1:] if c != DONE and c["choices"]]
    assert len(content_chunks) < relay.results[0].delivered_tokens  # tokens were merged
    assert relay.results[0].model == "trio-stream-local"


def test_relay_rejects_bad_configuration() -> None:
    source = LocalTokenSource()
    with pytest.raises(ValueError, match="policy"):
        ChatRelay(source, policy="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="DetachedGenerations"):
        ChatRelay(source, policy="detach")
    with pytest.raises(ValueError, match="coalesce_window"):
        ChatRelay(source, coalesce_window=-1)
