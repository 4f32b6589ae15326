"""`OpenAIUpstream` against the fake OpenAI server on real Hypercorn sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import trio

from trio_stream.llm import (
    GenerationResult,
    OpenAIUpstream,
    UpstreamConnectionError,
    UpstreamHTTPError,
    UpstreamProtocolError,
    UpstreamStreamError,
)
from trio_stream.protocol import ChatDelta, ContentDelta, FinishDelta, ReasoningDelta, Usage
from trio_stream.sse._asgi import handle_lifespan
from trio_stream.testing import FakeOpenAI, open_test_server

REQUEST = {"model": "fake-model", "messages": [{"role": "user", "content": "hi there"}]}

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@asynccontextmanager
async def fake_upstream(fake: FakeOpenAI, **options: Any) -> AsyncIterator[OpenAIUpstream]:
    async with (
        open_test_server(fake) as server,
        OpenAIUpstream(server.url + "/v1", **options) as upstream,
    ):
        yield upstream


async def collect(upstream: OpenAIUpstream, request: dict[str, Any] = REQUEST) -> list[ChatDelta]:
    async with upstream.open_chat_stream(request) as stream:
        return [delta async for delta in stream]


def text_of(deltas: list[ChatDelta]) -> str:
    return "".join(d.text for d in deltas if isinstance(d, ContentDelta))


async def test_full_answer_with_usage_and_result() -> None:
    fake = FakeOpenAI(["Hel", "lo", " wörld"], reasoning=["hmm"])
    result = GenerationResult(id="g1")
    async with (
        fake_upstream(fake, api_key="sk-test") as upstream,
        upstream.open_chat_stream(REQUEST, result=result) as stream,
    ):
        deltas = [delta async for delta in stream]
    assert deltas[0] == ReasoningDelta("hmm")
    assert text_of(deltas) == "Hello wörld"
    assert FinishDelta("stop") in deltas
    assert deltas[-1] == Usage(2, 3, 5)
    assert result.status == "finished"
    assert result.finish_reason == "stop"
    assert result.delivered_tokens == 4
    assert result.completion_tokens == 3
    assert result.model == "fake-model"
    assert result.time_to_first_token is not None
    assert result.as_dict()["usage"] == {
        "prompt_tokens": 2,
        "completion_tokens": 3,
        "total_tokens": 5,
    }
    sent = fake.requests[0]
    assert sent.body["stream"] is True
    assert sent.body["stream_options"] == {"include_usage": True}
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.completed
    assert not sent.disconnected


async def test_request_body_defaults() -> None:
    upstream = OpenAIUpstream("http://127.0.0.1:9/v1/", model="m", include_usage=False)
    try:
        body = upstream.request_body({"messages": [], "stream_options": "bad"})
        assert body == {"messages": [], "stream": True, "model": "m", "stream_options": "bad"}
        upstream.include_usage = True
        assert upstream.request_body({"stream_options": {"x": 1}})["stream_options"] == {
            "x": 1,
            "include_usage": True,
        }
        assert upstream.base_url == "http://127.0.0.1:9/v1"
    finally:
        await upstream.aclose()
    with pytest.raises(ValueError, match="capacity"):
        OpenAIUpstream("http://x/v1", capacity=0)


async def test_max_tokens_gives_length() -> None:
    async with fake_upstream(FakeOpenAI(["a", "b", "c"])) as upstream:
        deltas = await collect(upstream, {**REQUEST, "max_tokens": 2})
    assert text_of(deltas) == "ab"
    assert FinishDelta("length") in deltas


async def test_error_object_mid_stream_raises_after_earlier_tokens() -> None:
    fake = FakeOpenAI(["a", "b", "c"], error_after=2, error_message="overloaded")
    result = GenerationResult()
    got: list[ChatDelta] = []
    async with (
        fake_upstream(fake) as upstream,
        upstream.open_chat_stream(REQUEST, result=result) as stream,
    ):

        async def drain() -> None:
            async for delta in stream:
                got.append(delta)

        with pytest.raises(UpstreamStreamError, match="overloaded") as info:
            await drain()
    assert text_of(got) == "ab"
    assert info.value.type == "server_error"
    assert info.value.code == "fake"
    assert result.status == "failed"
    assert result.error is info.value


async def test_eof_without_done_after_finish_is_clean() -> None:
    async with fake_upstream(FakeOpenAI(["x", "y"], send_done=False)) as upstream:
        deltas = await collect(upstream)
    assert text_of(deltas) == "xy"


async def test_eof_before_finish_is_a_protocol_error() -> None:
    async with (
        fake_upstream(FakeOpenAI(["x", "y", "z"], eof_after=2)) as upstream,
        upstream.open_chat_stream(REQUEST) as stream,
    ):
        with pytest.raises(UpstreamProtocolError, match="ended before"):
            async for _ in stream:
                pass


async def test_split_utf8_arrives_intact() -> None:
    tokens = ["Grü", "ße ", "👋", " 日本"]
    async with fake_upstream(FakeOpenAI(tokens, split_utf8=True)) as upstream:
        assert text_of(await collect(upstream)) == "Grüße 👋 日本"


async def test_non_200_status_raises_at_open() -> None:
    fake = FakeOpenAI(status=429, error_message="slow down")
    async with fake_upstream(fake) as upstream:
        with pytest.raises(UpstreamHTTPError, match="slow down") as info:
            await collect(upstream)
    assert info.value.status_code == 429


async def test_bad_request_body_is_rejected_by_the_fake() -> None:
    async with open_test_server(FakeOpenAI()) as server, httpx.AsyncClient() as client:
        url = server.url + "/v1/chat/completions"
        assert (await client.post(url, content=b"[1]")).status_code == 400
        assert (await client.post(url, content=b"x" * (1024 * 1024 + 10))).status_code == 413
        assert (await client.get(server.url + "/nope")).status_code == 404
        answer = (await client.post(url, json={**REQUEST, "stream": False})).json()
        assert answer["choices"][0]["message"]["content"] == "Hello, world!"


async def _json_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        await handle_lifespan(receive, send)  # type: ignore[arg-type]
        return
    body = b'{"data": "not a list"}' if scope["path"].endswith("models") else b"{}"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def test_wrong_content_type_and_malformed_models() -> None:
    async with (
        open_test_server(_json_app) as server,  # type: ignore[arg-type]
        OpenAIUpstream(server.url + "/v1") as upstream,
    ):
        with pytest.raises(UpstreamProtocolError, match="text/event-stream"):
            await collect(upstream)
        with pytest.raises(UpstreamProtocolError, match="model list"):
            await upstream.list_models()


async def _raw_server(  # noqa: ASYNC114  a test helper, started with nursery.start
    payload: bytes, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """A misbehaving HTTP/1.1 server: sends ``payload`` then drops the connection."""

    async def handler(stream: trio.SocketStream) -> None:
        await stream.receive_some(65536)
        await stream.send_all(payload)
        await stream.aclose()

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(handler, listeners)


def _chunked(body: bytes) -> bytes:
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    return head + b"%x\r\n" % len(body) + body + b"\r\n"  # no terminating chunk: a cut


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n', UpstreamConnectionError),
        (b"data: {broken\n\n", UpstreamProtocolError),
        (b'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}\n\n', None),
    ],
)
async def test_connection_cut_mid_body(body: bytes, error: type[Exception] | None) -> None:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(_raw_server, _chunked(body))
        async with OpenAIUpstream(f"http://127.0.0.1:{port}/v1") as upstream:
            if error is None:  # cut after the finish_reason: the answer is complete
                assert FinishDelta("stop") in await collect(upstream)
            else:
                with pytest.raises(error):
                    await collect(upstream)
        nursery.cancel_scope.cancel()


async def test_unreachable_upstream() -> None:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    await listener.aclose()  # nothing listens there now
    async with OpenAIUpstream(f"http://127.0.0.1:{port}/v1") as upstream:
        with pytest.raises(UpstreamConnectionError):
            await collect(upstream)
        with pytest.raises(UpstreamConnectionError):
            await upstream.list_models()


async def test_slow_first_token_hits_the_configured_read_timeout() -> None:
    async with fake_upstream(FakeOpenAI(hold_after=0), read_timeout=0.2) as upstream:
        with trio.fail_after(10):
            async with upstream.open_chat_stream(REQUEST) as stream:
                with pytest.raises(UpstreamConnectionError, match="ReadTimeout"):
                    async for _ in stream:
                        pass


async def test_leaving_early_closes_the_upstream_connection() -> None:
    fake = FakeOpenAI([f"t{i}" for i in range(10)], hold_after=3)
    result = GenerationResult()
    async with fake_upstream(fake) as upstream:
        async with upstream.open_chat_stream(REQUEST, result=result) as stream:
            got = [await anext(stream) for _ in range(3)]
        assert text_of(got) == "t0t1t2"
        with trio.fail_after(10):
            await fake.requests[0].ended.wait()
    assert fake.requests[0].disconnected
    assert fake.requests[0].tokens_sent == 3
    assert result.status == "cancelled"
    assert result.delivered_tokens == 3


async def test_list_models() -> None:
    async with fake_upstream(FakeOpenAI(model="m1")) as upstream:
        assert [m["id"] for m in await upstream.list_models()] == ["m1"]
    async with fake_upstream(FakeOpenAI(status=500)) as upstream:
        # the fake answers /v1/models normally even when chat fails; use a bad path
        upstream.base_url += "/missing"
        with pytest.raises(UpstreamHTTPError) as info:
            await upstream.list_models()
    assert info.value.status_code == 404


async def test_shared_client_is_not_closed() -> None:
    async with httpx.AsyncClient() as client:
        async with fake_upstream(FakeOpenAI(), client=client) as upstream:
            assert text_of(await collect(upstream)) == "Hello, world!"
        assert not client.is_closed
