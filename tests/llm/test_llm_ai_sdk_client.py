"""The real AI SDK client (npm ``ai`` v5, under Node) against the relay's ``/api/chat``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.conftest import require_program
from tests.llm._llm_helpers import open_fake_relay
from trio_stream.core import Hub
from trio_stream.testing import FakeOpenAI

pytestmark = pytest.mark.needs_node

JS_DIR = Path(__file__).resolve().parents[1] / "js"
SCRIPT = JS_DIR / "ai_sdk_chat.mjs"
TOKENS = ["Hel", "lo", ", ", "wörld", " 👋"]


async def run_ai_sdk(url: str, chat_id: str, *extra: str) -> dict[str, Any]:
    node = require_program("node")
    if not (JS_DIR / "node_modules" / "ai" / "package.json").exists():
        pytest.skip("tests/js/node_modules is missing: run `npm ci` in tests/js")
    with trio.fail_after(60):
        done = await trio.run_process(
            [node, str(SCRIPT), f"{url}/api/chat", chat_id, *extra],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode()
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


def text_parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [part for part in message["parts"] if part["type"] == "text"]


async def test_ai_sdk_client_receives_the_full_answer() -> None:
    async with open_fake_relay(FakeOpenAI(TOKENS, reasoning=["Think", "ing"])) as relay:
        result = await run_ai_sdk(relay.url, "chat-node")
    assert result["errors"] == []
    message = result["message"]
    assert message["id"] == "chat-node"
    assert message["role"] == "assistant"
    assert [p["type"] for p in message["parts"]] == ["reasoning", "text"]
    assert message["parts"][0]["text"] == "Thinking"
    [text] = text_parts(message)
    assert text == {"type": "text", "text": "Hello, wörld 👋", "state": "done"}
    assert relay.results[0].status == "finished"


async def test_ai_sdk_client_sees_a_mid_stream_error() -> None:
    fake = FakeOpenAI(TOKENS, error_after=2, error_message="secret detail")
    async with open_fake_relay(fake, error_message="The model failed.") as relay:
        result = await run_ai_sdk(relay.url, "chat-err")
    assert result["errors"] == ["The model failed."]
    [text] = text_parts(result["message"])
    assert text["text"] == "Hello"


async def test_ai_sdk_client_resumes_a_detached_answer() -> None:
    async with open_fake_relay(FakeOpenAI(TOKENS), hub=Hub()) as relay:
        result = await run_ai_sdk(relay.url, "chat-resume", "resume")
        missing = await run_ai_sdk(relay.url, "other-chat", "reconnect-only")
    assert result["errors"] == []
    [first] = text_parts(result["message"])
    [again] = text_parts(result["resumed"]["message"])
    assert first["text"] == again["text"] == "Hello, wörld 👋"
    assert missing["resumed"] is None  # 204: no answer to resume
