"""Reading and checking chat requests, and the small JSON answers of the LLM endpoints."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

from ..protocol import ContentDelta, ReasoningDelta, ToolCallDelta, TrioStreamError
from ..sse._asgi import Receive, Scope, Send, send_json
from ._stream import ChatStream, GenerationResult

__all__ = [
    "InvalidChatRequest",
    "collect_completion",
    "openai_request",
    "read_json_body",
    "send_json",
    "send_json_error",
    "valid_answer_id",
]

logger = logging.getLogger("trio_stream.llm")

_ANSWER_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")


class InvalidChatRequest(TrioStreamError, ValueError):
    """A chat request the endpoint refuses; ``status`` is the HTTP status to answer with.

    The message is a fixed phrase, safe to show the client.
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


async def read_json_body(receive: Receive, max_size: int) -> dict[str, Any] | None:
    """The request body as a JSON object: 413 past ``max_size`` bytes, 400 when not JSON;
    None when the client disconnected before sending it all."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_size:
            raise InvalidChatRequest("request body too large", 413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    try:
        body = json.loads(b"".join(chunks))
    except (ValueError, RecursionError):  # deeply nested JSON is bad input too
        raise InvalidChatRequest("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidChatRequest("request body must be a JSON object")
    return body


def openai_request(body: dict[str, Any], default_model: str | None) -> dict[str, Any]:
    """Check an OpenAI chat-completions body; fill in ``model``. Other fields pass through."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidChatRequest("'messages' must be a non-empty list")
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise InvalidChatRequest("each message must be an object with a 'role'")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise InvalidChatRequest("'stream' must be a boolean")
    request = dict(body)
    if not isinstance(request.get("model"), str):
        request.pop("model", None)
        if default_model is not None:
            request["model"] = default_model
    return request


def valid_answer_id(value: object) -> str | None:
    """``value`` if it can name an answer (1-64 of ``A-Z a-z 0-9 _ -``), else None."""
    if isinstance(value, str) and _ANSWER_ID.fullmatch(value):
        return value
    return None


async def send_json_error(scope: Scope, send: Send, status: int, message: str) -> None:
    """Log and send an OpenAI-style error object (``message`` must be a safe, fixed text)."""
    logger.warning("%s %s: %d %s", scope.get("method"), scope.get("path"), status, message)
    kind = "invalid_request_error" if status < 500 else "upstream_error"
    await send_json(send, status, {"error": {"message": message, "type": kind}})


async def collect_completion(stream: ChatStream, result: GenerationResult) -> dict[str, Any]:
    """Read a whole answer and build the ``chat.completion`` object a non-streaming
    request gets (choice 0; reasoning as ``reasoning_content``; tool calls joined)."""
    text: list[str] = []
    reasoning: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    async for delta in stream:
        if getattr(delta, "choice", 0) != 0:
            continue
        if isinstance(delta, ContentDelta):
            text.append(delta.text)
        elif isinstance(delta, ReasoningDelta):
            reasoning.append(delta.text)
        elif isinstance(delta, ToolCallDelta):
            call = calls.setdefault(
                delta.index,
                {
                    "id": delta.id,
                    "type": "function",
                    "function": {"name": delta.name, "arguments": ""},
                },
            )
            call["id"] = call["id"] or delta.id
            call["function"]["name"] = call["function"]["name"] or delta.name
            call["function"]["arguments"] += delta.arguments
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text)}
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if calls:
        message["tool_calls"] = [calls[index] for index in sorted(calls)]
    usage = result.usage.as_dict() if result.usage is not None else {}
    usage.setdefault("completion_tokens", result.delivered_tokens)
    return {
        "id": f"chatcmpl-{result.id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": result.model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": result.finish_reason or "stop"}
        ],
        "usage": usage,
    }
