"""The Vercel AI SDK (v5) "UI message stream" protocol, v1, sans-IO.

An SSE stream whose events carry one JSON "part" each in ``data``, ended by
``data: [DONE]``, with the response header ``x-vercel-ai-ui-message-stream:
v1``. The AI SDK's ``DefaultChatTransport`` (behind ``useChat``) validates
every part against its schema, so only the part types it knows are produced
here; a text answer looks like::

    {"type":"start","messageId":"..."}
    {"type":"text-start","id":"text-1"}
    {"type":"text-delta","id":"text-1","delta":"Hel"}   (one per token)
    {"type":"text-end","id":"text-1"}
    {"type":"finish","finishReason":"stop"}
    [DONE]

Reasoning travels as ``reasoning-start/-delta/-end`` and tool calls as
``tool-input-start/-delta/-available``. An error is one whole ``error`` part
followed by ``finish``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ._openai import (
    ChatDelta,
    ContentDelta,
    ReasoningDelta,
    ToolCallDelta,
)

__all__ = [
    "UI_MESSAGE_STREAM_HEADERS",
    "UI_PART_TYPES",
    "UIMessageStreamEncoder",
    "encode_ui_part",
    "ui_finish_reason",
    "ui_messages_to_openai",
]

UI_MESSAGE_STREAM_HEADERS: tuple[tuple[str, str], ...] = (("x-vercel-ai-ui-message-stream", "v1"),)
"""Headers a UI message stream response carries besides the SSE ones."""

UI_PART_TYPES = frozenset(
    {
        "start",
        "finish",
        "abort",
        "error",
        "message-metadata",
        "start-step",
        "finish-step",
        "text-start",
        "text-delta",
        "text-end",
        "reasoning-start",
        "reasoning-delta",
        "reasoning-end",
        "tool-input-start",
        "tool-input-delta",
        "tool-input-available",
        "tool-input-error",
        "tool-output-available",
        "tool-output-error",
        "source-url",
        "source-document",
        "file",
    }
)
"""Part types the AI SDK v5 client accepts (besides ``data-*`` parts)."""

_FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content-filter",
    "tool_calls": "tool-calls",
    "function_call": "tool-calls",
    "error": "error",
}


def ui_finish_reason(reason: str | None) -> str:
    """Map an OpenAI ``finish_reason`` to the AI SDK's (``content_filter`` → ``content-filter``
    ...); ``None`` → ``unknown``, anything else → ``other``."""
    if reason is None:
        return "unknown"
    return _FINISH_REASONS.get(reason, "other")


def encode_ui_part(part: Mapping[str, Any]) -> str:
    """Serialise one part as compact JSON, refusing types the AI SDK client does not know.

    Raises ``ValueError`` for an unknown ``type`` (a ``data-<name>`` type is
    allowed: those are the application's custom parts).
    """
    kind = part.get("type")
    if not isinstance(kind, str) or not (kind in UI_PART_TYPES or kind.startswith("data-")):
        raise ValueError(f"unknown UI message stream part type: {kind!r}")
    return json.dumps(part, separators=(",", ":"), ensure_ascii=False)


class UIMessageStreamEncoder:
    """Turn chat deltas into UI message stream parts (plain dicts), keeping part state.

    Call :meth:`start` once, :meth:`feed` for each delta, then :meth:`finish`
    (or :meth:`error`). Text and reasoning parts are opened on their first
    delta and closed when the other kind starts or the message ends; tool
    calls stream their arguments and are completed (``tool-input-available``
    with the parsed input) at the end. Only choice 0 is encoded: a UI message
    is one answer. Encode each part with :func:`encode_ui_part`.
    """

    def __init__(self, message_id: str | None = None) -> None:
        self.message_id = message_id
        self.finished = False
        self._counter = 0
        self._open: tuple[str, str] | None = None  # ("text" | "reasoning", part id)
        self._tools: dict[int, _ToolCall] = {}

    def start(self) -> list[dict[str, Any]]:
        """The opening part (carries ``messageId`` when one was given)."""
        part: dict[str, Any] = {"type": "start"}
        if self.message_id is not None:
            part["messageId"] = self.message_id
        return [part]

    def feed(self, delta: ChatDelta) -> list[dict[str, Any]]:
        """Parts for one delta ([] for deltas that only matter at the end, and other choices)."""
        if self.finished or getattr(delta, "choice", 0) != 0:
            return []
        if isinstance(delta, ContentDelta | ReasoningDelta):
            kind = "text" if isinstance(delta, ContentDelta) else "reasoning"
            parts = self._switch_to(kind)
            assert self._open is not None
            parts.append({"type": f"{kind}-delta", "id": self._open[1], "delta": delta.text})
            return parts
        if isinstance(delta, ToolCallDelta):
            return self._tool_delta(delta)
        return []

    def finish(
        self, finish_reason: str | None = None, *, message_metadata: Any = None
    ) -> list[dict[str, Any]]:
        """Close open parts, complete tool calls, then ``finish`` (OpenAI reason mapped)."""
        if self.finished:
            return []
        parts = self._close_all()
        part: dict[str, Any] = {"type": "finish", "finishReason": ui_finish_reason(finish_reason)}
        if message_metadata is not None:
            part["messageMetadata"] = message_metadata
        parts.append(part)
        self.finished = True
        return parts

    def error(self, error_text: str) -> list[dict[str, Any]]:
        """Close open parts, then one whole ``error`` part and ``finish`` (reason ``error``).

        ``error_text`` reaches the end user: pass a sanitised message.
        """
        if self.finished:
            return []
        parts = self._close_open()
        parts.append({"type": "error", "errorText": error_text})
        parts.append({"type": "finish", "finishReason": "error"})
        self.finished = True
        return parts

    def abort(self) -> list[dict[str, Any]]:
        """Close open parts, then ``abort``: the answer was stopped on purpose (a Stop button)."""
        if self.finished:
            return []
        parts = self._close_open()
        parts.append({"type": "abort"})
        self.finished = True
        return parts

    def _new_id(self, kind: str) -> str:
        self._counter += 1
        return f"{kind}-{self._counter}"

    def _close_open(self) -> list[dict[str, Any]]:
        if self._open is None:
            return []
        kind, part_id = self._open
        self._open = None
        return [{"type": f"{kind}-end", "id": part_id}]

    def _switch_to(self, kind: str) -> list[dict[str, Any]]:
        if self._open is not None and self._open[0] == kind:
            return []
        parts = self._close_open()
        part_id = self._new_id(kind)
        self._open = (kind, part_id)
        parts.append({"type": f"{kind}-start", "id": part_id})
        return parts

    def _tool_delta(self, delta: ToolCallDelta) -> list[dict[str, Any]]:
        call = self._tools.get(delta.index)
        parts: list[dict[str, Any]] = []
        if call is None:
            parts = self._close_open()
            call = _ToolCall(delta.id or self._new_id("call"), delta.name or "tool")
            self._tools[delta.index] = call
            parts.append(
                {
                    "type": "tool-input-start",
                    "toolCallId": call.id,
                    "toolName": call.name,
                    "dynamic": True,
                }
            )
        if delta.arguments:
            call.arguments.append(delta.arguments)
            parts.append(
                {
                    "type": "tool-input-delta",
                    "toolCallId": call.id,
                    "inputTextDelta": delta.arguments,
                }
            )
        return parts

    def _close_all(self) -> list[dict[str, Any]]:
        parts = self._close_open()
        for call in self._tools.values():
            text = "".join(call.arguments)
            common = {"toolCallId": call.id, "toolName": call.name, "dynamic": True}
            try:
                parts.append(
                    {"type": "tool-input-available", **common, "input": json.loads(text or "{}")}
                )
            except (ValueError, RecursionError):
                parts.append(
                    {
                        "type": "tool-input-error",
                        **common,
                        "input": text,
                        "errorText": "the tool call's arguments are not valid JSON",
                    }
                )
        self._tools.clear()
        return parts


class _ToolCall:
    __slots__ = ("arguments", "id", "name")

    def __init__(self, id: str, name: str) -> None:
        self.id = id
        self.name = name
        self.arguments: list[str] = []


def ui_messages_to_openai(messages: object) -> list[dict[str, str]]:
    """Convert the ``messages`` of an AI SDK chat request (UI messages) to OpenAI messages.

    Each UI message ``{"role", "parts": [{"type": "text", "text"}, ...]}``
    becomes ``{"role", "content"}`` with its text parts joined; other parts
    (files, tools, reasoning) are left out; v4-style ``content`` strings are
    accepted too. Raises ``ValueError`` when the shape is wrong.
    """
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty list")
    converted: list[dict[str, str]] = []
    for message in messages:
        if not isinstance(message, dict):
            raise ValueError("each message must be an object")
        role = message.get("role")
        if role not in {"system", "user", "assistant"}:
            raise ValueError("message 'role' must be system, user or assistant")
        parts = message.get("parts")
        if isinstance(parts, list):
            texts = [
                part["text"]
                for part in parts
                if isinstance(part, dict)
                and part.get("type") == "text"
                and isinstance(part.get("text"), str)
            ]
            content = "".join(texts)
        elif isinstance(message.get("content"), str):
            content = message["content"]
        else:
            raise ValueError("message needs 'parts' (a list) or 'content' (a string)")
        converted.append({"role": role, "content": content})
    return converted
