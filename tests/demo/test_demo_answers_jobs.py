"""The demo's LLM endpoints (local source and --upstream) and its jobs."""

from __future__ import annotations

import json

import trio

from tests.demo._demo_helpers import (
    SAFETY,
    data_of,
    demo_client,
    read_metrics,
    running_demo,
    sse_stream,
)
from trio_stream.testing import FakeOpenAI, open_test_server

QUESTION = {"messages": [{"role": "user", "content": "hi"}]}


async def test_models_lists_the_local_source() -> None:
    async with running_demo(ticker_interval=0) as server, demo_client(server) as client:
        response = await client.get("/v1/models")
    assert response.status_code == 200
    assert [model["id"] for model in response.json()["data"]] == ["trio-stream-local"]


async def test_models_and_answers_come_from_the_upstream() -> None:
    fake = FakeOpenAI(["Hello", " from", " upstream"])
    async with open_test_server(fake) as upstream:
        options = {"ticker_interval": 0, "upstream": upstream.url + "/v1", "model": "m1"}
        async with running_demo(**options) as server, demo_client(server) as client:
            models = await client.get("/v1/models")
            answer = await client.post("/v1/chat/completions", json=QUESTION)
    assert [model["id"] for model in models.json()["data"]] == ["fake-model"]
    assert answer.json()["choices"][0]["message"]["content"] == "Hello from upstream"
    assert fake.requests[0].body["model"] == "m1"


async def test_stream_false_answers_with_one_completion() -> None:
    async with running_demo(ticker_interval=0) as server, demo_client(server) as client:
        response = await client.post("/v1/chat/completions", json={**QUESTION, "max_tokens": 3})
        stats = await read_metrics(client)
    body = response.json()
    assert response.status_code == 200
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["choices"][0]["message"]["content"]
    assert stats['trio_stream_llm_answers_total{status="finished"}'] == 1
    assert stats["trio_stream_llm_tokens_delivered_total"] == 3


async def test_streamed_answer_ends_with_done() -> None:
    request = {**QUESTION, "stream": True, "max_tokens": 4}
    async with (
        running_demo(ticker_interval=0) as server,
        demo_client(server) as client,
        client.stream("POST", "/v1/chat/completions", json=request) as response,
    ):
        lines = [line async for line in response.aiter_lines() if line.startswith("data:")]
    chunks = [json.loads(line[5:]) for line in lines[:-1]]
    assert lines[-1] == "data: [DONE]"
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == 'You asked: "'  # the local source's first 4 tokens


async def test_ai_sdk_endpoint_streams_ui_message_parts() -> None:
    message = {"id": "m1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}
    async with (
        running_demo(ticker_interval=0) as server,
        demo_client(server) as client,
        client.stream("POST", "/api/chat", json={"messages": [message]}) as response,
    ):
        header = response.headers["x-vercel-ai-ui-message-stream"]
        lines = [line async for line in response.aiter_lines() if line.startswith("data:")]
    parts = [json.loads(line[5:]) for line in lines[:-1]]
    assert header == "v1"
    assert parts[0]["type"] == "start"
    assert parts[-1]["type"] == "finish"
    assert lines[-1] == "data: [DONE]"


async def test_bad_chat_request_is_400() -> None:
    async with running_demo(ticker_interval=0) as server, demo_client(server) as client:
        response = await client.post("/v1/chat/completions", content=b"{oops")
    assert response.status_code == 400


async def test_job_progress_streams_to_100_percent() -> None:
    async with running_demo(ticker_interval=0) as server, demo_client(server) as client:
        response = await client.post("/api/jobs", json={"steps": 4, "duration": 0.2})
        job = response.json()
        path = f"/sse/{job['topic']}?last_event_id={job['last_event_id']}"
        async with sse_stream(client, path) as reader:
            with trio.fail_after(SAFETY):
                events = await reader.events(4)
        stats = await read_metrics(client)
    assert response.status_code == 201
    assert job["topic"] == f"jobs.{job['id']}"
    assert [data_of(e)["percent"] for e in events] == [25, 50, 75, 100]
    assert [e.event for e in events] == ["progress"] * 3 + ["done"]
    assert data_of(events[-1])["state"] == "done"
    assert stats["trio_stream_jobs_started_total"] == 1


async def test_job_without_body_uses_the_defaults() -> None:
    async with (
        running_demo(ticker_interval=0, job_steps=2) as server,
        demo_client(server) as client,
    ):
        response = await client.post("/api/jobs")
        job = response.json()
        path = f"/sse/{job['topic']}?last_event_id={job['last_event_id']}"
        async with sse_stream(client, path) as reader:
            with trio.fail_after(SAFETY):
                events = await reader.events(2)
    assert [data_of(e)["step"] for e in events] == [1, 2]


async def test_bad_job_requests_are_400() -> None:
    async with running_demo(ticker_interval=0) as server, demo_client(server) as client:
        answers = [
            await client.post("/api/jobs", json=body)
            for body in ({"steps": 0}, {"steps": "3"}, {"duration": -1}, {"duration": True})
        ]
        not_object = await client.post("/api/jobs", content=b"[]")
    assert [answer.status_code for answer in answers] == [400] * 4
    assert not_object.status_code == 400


async def test_too_many_jobs_is_503() -> None:
    async with (
        running_demo(ticker_interval=0, max_jobs=1) as server,
        demo_client(server) as client,
    ):
        first = await client.post("/api/jobs", json={"duration": 60})
        second = await client.post("/api/jobs", json={"duration": 60})
    assert first.status_code == 201
    assert second.status_code == 503
