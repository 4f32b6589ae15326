"""OpenAI chat-completions streaming, sans-IO: chunk JSON in, typed deltas out, and back.

The wire format: a ``text/event-stream`` whose events carry one JSON
``chat.completion.chunk`` each in ``data``, ended by ``data: [DONE]``. Real
servers (OpenAI, vLLM, llama.cpp, Ollama's ``/v1``) differ in the details this
module smooths over: a first chunk that carries only the role, a last chunk
with ``choices: []`` (or ``null``) that carries ``usage``, an ``error`` object
sent on a 200 stream, ``reasoning_content`` (or ``reasoning``) next to
``content``, and an end of stream without ``[DONE]``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from ._errors import TrioStreamError

__all__ = [
    "DONE",
    "ChatChunkEncoder",
    "ChatChunkParser",
    "ChatDelta",
    "ChunkDecodeError",
    "ContentDelta",
    "ErrorDelta",
    "FinishDelta",
    "IncompleteStreamError",
    "ReasoningDelta",
    "ToolCallDelta",
    "Usage",
    "coalesce_deltas",
]

DONE = "[DONE]"
"""The ``data`` of the event that ends an OpenAI-style (and AI SDK) stream."""


class ChunkDecodeError(TrioStreamError, ValueError):
    """A chunk of an OpenAI-compatible stream is not the JSON object it must be."""


class IncompleteStreamError(TrioStreamError):
    """The stream ended before the model finished: no ``finish_reason`` and no ``[DONE]``.

    A connection cut by a crashing or restarting upstream looks like this; the
    answer received so far is truncated.
    """


@dataclass(frozen=True, slots=True)
class ContentDelta:
    """A piece of the answer's text (``delta.content``) for choice ``choice``."""

    text: str
    choice: int = 0


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A piece of the model's reasoning (``delta.reasoning_content``), shown apart from text."""

    text: str
    choice: int = 0


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of tool call ``index``: the first one carries ``id`` and ``name``,
    later ones more of the JSON ``arguments`` text."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    choice: int = 0


@dataclass(frozen=True, slots=True)
class FinishDelta:
    """The model stopped choice ``choice``; ``reason``: ``stop``, ``length``, ``tool_calls``..."""

    reason: str
    choice: int = 0


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as the upstream reported them (any may be missing)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None

    def as_dict(self) -> dict[str, int]:
        """The counts that are known, under their OpenAI names."""
        counts = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }
        return {name: value for name, value in counts.items() if value is not None}


@dataclass(frozen=True, slots=True)
class ErrorDelta:
    """The upstream reported an error inside a 200 stream (``{"error": {...}}``).

    ``message`` is the upstream's text: log it, do not forward it to end users
    unchecked.
    """

    message: str
    type: str | None = None
    code: str | None = None


ChatDelta: TypeAlias = (
    ContentDelta | ReasoningDelta | ToolCallDelta | FinishDelta | Usage | ErrorDelta
)
"""Anything :class:`ChatChunkParser` yields."""


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _optional_str(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _usage(obj: Mapping[str, Any]) -> Usage:
    return Usage(
        _count(obj.get("prompt_tokens")),
        _count(obj.get("completion_tokens")),
        _count(obj.get("total_tokens")),
    )


def _error(obj: object) -> ErrorDelta:
    if isinstance(obj, Mapping):
        message = obj.get("message")
        return ErrorDelta(
            message if isinstance(message, str) else _dumps(obj),
            _optional_str(obj.get("type")),
            _optional_str(obj.get("code")),
        )
    return ErrorDelta(obj if isinstance(obj, str) else _dumps(obj))


class ChatChunkParser:
    """Turn the ``data`` of each event of a chat-completions stream into typed deltas.

    Feed it one event at a time (an :class:`SSEDecoder` splits the bytes)::

        for event in decoder.feed(chunk):
            for delta in parser.feed(event.data, event.event):
                ...
        parser.end_of_stream()  # at EOF: raises if the answer was cut short

    A role-only first chunk and empty deltas yield nothing; ``choices: []``
    (or ``null``) with a ``usage`` object yields a :class:`Usage`; an
    ``error`` object yields an :class:`ErrorDelta` (as does an event of type
    ``error``). ``completion_id``, ``model`` and ``created`` keep the first
    values seen. Malformed data raises :class:`ChunkDecodeError`. Data after
    ``[DONE]`` is ignored.
    """

    def __init__(self) -> None:
        self.completion_id: str | None = None
        self.model: str | None = None
        self.created: int | None = None
        self.done = False
        """True once ``[DONE]`` arrived."""
        self.finish_reason: str | None = None
        """The first ``finish_reason`` seen (of any choice)."""
        self.usage: Usage | None = None
        self.error: ErrorDelta | None = None

    @property
    def finished(self) -> bool:
        """True when the stream may end cleanly now: ``[DONE]`` or a ``finish_reason`` seen."""
        return self.done or self.finish_reason is not None

    def feed(self, data: str, event: str | None = "message") -> list[ChatDelta]:
        """Parse the ``data`` of one event (of type ``event``) into deltas, in order."""
        if self.done:
            return []
        if data.strip() == DONE:
            self.done = True
            return []
        try:
            obj = json.loads(data)
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than the stack
            if event == "error":  # some servers send plain text in an error event
                return [self._record_error(ErrorDelta(data))]
            raise ChunkDecodeError("chunk data is not JSON") from None
        if not isinstance(obj, dict):
            raise ChunkDecodeError("chunk is not a JSON object")
        if "error" in obj and obj["error"] is not None:
            return [self._record_error(_error(obj["error"]))]
        if event == "error":
            return [self._record_error(_error(obj))]
        self._remember_metadata(obj)
        deltas: list[ChatDelta] = []
        choices = obj.get("choices")
        if choices is not None:
            if not isinstance(choices, list):
                raise ChunkDecodeError("chunk 'choices' is not a list")
            for choice in choices:
                self._parse_choice(choice, deltas)
        usage = obj.get("usage")
        if isinstance(usage, dict):
            self.usage = _usage(usage)
            deltas.append(self.usage)
        return deltas

    def end_of_stream(self) -> None:
        """Call at EOF: raises :class:`IncompleteStreamError` unless the model had finished.

        An EOF after a ``finish_reason`` but without ``[DONE]`` is a clean end
        (several servers omit ``[DONE]``); an EOF before it is a cut stream.
        """
        if not self.finished:
            raise IncompleteStreamError("the stream ended before the model finished")

    def _record_error(self, error: ErrorDelta) -> ErrorDelta:
        self.error = error
        return error

    def _remember_metadata(self, obj: Mapping[str, Any]) -> None:
        if self.completion_id is None and isinstance(obj.get("id"), str):
            self.completion_id = obj["id"]
        if self.model is None and isinstance(obj.get("model"), str):
            self.model = obj["model"]
        if self.created is None:
            self.created = _count(obj.get("created"))

    def _parse_choice(self, choice: object, out: list[ChatDelta]) -> None:
        if not isinstance(choice, dict):
            raise ChunkDecodeError("chunk choice is not an object")
        index = _count(choice.get("index")) or 0
        delta = choice.get("delta")
        if delta is not None and not isinstance(delta, dict):
            raise ChunkDecodeError("chunk 'delta' is not an object")
        if delta:
            reasoning = delta.get("reasoning_content")
            if not isinstance(reasoning, str):
                reasoning = delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                out.append(ReasoningDelta(reasoning, index))
            content = delta.get("content")
            if isinstance(content, str) and content:
                out.append(ContentDelta(content, index))
            tool_calls = delta.get("tool_calls")
            if isinstance(tool_calls, list):
                out.extend(_tool_call(call, index) for call in tool_calls)
        reason = choice.get("finish_reason")
        if isinstance(reason, str) and reason:
            if self.finish_reason is None:
                self.finish_reason = reason
            out.append(FinishDelta(reason, index))


def _tool_call(call: object, choice: int) -> ToolCallDelta:
    if not isinstance(call, dict):
        raise ChunkDecodeError("tool call fragment is not an object")
    function = call.get("function")
    function = function if isinstance(function, dict) else {}
    arguments = function.get("arguments")
    return ToolCallDelta(
        index=_count(call.get("index")) or 0,
        id=_optional_str(call.get("id")),
        name=_optional_str(function.get("name")),
        arguments=arguments if isinstance(arguments, str) else "",
        choice=choice,
    )


class ChatChunkEncoder:
    """Build the ``data`` of OpenAI ``chat.completion.chunk`` events from deltas.

    Every chunk carries the same ``completion_id``, ``model`` and ``created``,
    as the real API does. The first chunk a client sees should be
    :meth:`role_chunk`; the stream ends with :data:`DONE`. Returns compact JSON
    text, ready to be an :class:`Event`'s data.
    """

    def __init__(self, completion_id: str, model: str, created: int) -> None:
        self.completion_id = completion_id
        self.model = model
        self.created = created

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> str:
        return _dumps(
            {
                "id": self.completion_id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": choices,
                **extra,
            }
        )

    @staticmethod
    def _choice(delta: dict[str, Any], index: int, finish_reason: str | None) -> dict[str, Any]:
        return {"index": index, "delta": delta, "finish_reason": finish_reason}

    def role_chunk(self, choice: int = 0) -> str:
        """The opening chunk: role ``assistant`` and empty content."""
        return self._chunk([self._choice({"role": "assistant", "content": ""}, choice, None)])

    def encode(self, delta: ChatDelta) -> str:
        """The chunk carrying ``delta`` (an :class:`ErrorDelta` becomes an ``error`` object)."""
        if isinstance(delta, ContentDelta):
            return self._chunk([self._choice({"content": delta.text}, delta.choice, None)])
        if isinstance(delta, ReasoningDelta):
            body = {"reasoning_content": delta.text}
            return self._chunk([self._choice(body, delta.choice, None)])
        if isinstance(delta, ToolCallDelta):
            function: dict[str, Any] = {"arguments": delta.arguments}
            call: dict[str, Any] = {"index": delta.index}
            if delta.id is not None:
                call.update(id=delta.id, type="function")
            if delta.name is not None:
                function["name"] = delta.name
            call["function"] = function
            return self._chunk([self._choice({"tool_calls": [call]}, delta.choice, None)])
        if isinstance(delta, FinishDelta):
            return self._chunk([self._choice({}, delta.choice, delta.reason)])
        if isinstance(delta, Usage):
            return self._chunk([], usage=delta.as_dict())
        error: dict[str, Any] = {"message": delta.message}
        if delta.type is not None:
            error["type"] = delta.type
        if delta.code is not None:
            error["code"] = delta.code
        return _dumps({"error": error})


def coalesce_deltas(deltas: Iterable[ChatDelta]) -> list[ChatDelta]:
    """Merge neighbouring deltas that can travel as one: text with text, reasoning with
    reasoning (same choice), and argument fragments of the same tool call.

    Used to send tokens that arrived within a few milliseconds as one event;
    order and content are preserved exactly.
    """
    merged: list[ChatDelta] = []
    for delta in deltas:
        last = merged[-1] if merged else None
        if isinstance(delta, ContentDelta) and isinstance(last, ContentDelta):
            if last.choice == delta.choice:
                merged[-1] = ContentDelta(last.text + delta.text, delta.choice)
                continue
        elif isinstance(delta, ReasoningDelta) and isinstance(last, ReasoningDelta):
            if last.choice == delta.choice:
                merged[-1] = ReasoningDelta(last.text + delta.text, delta.choice)
                continue
        elif (
            isinstance(delta, ToolCallDelta)
            and isinstance(last, ToolCallDelta)
            and (last.index, last.choice) == (delta.index, delta.choice)
            and delta.id is None
            and delta.name is None
        ):
            merged[-1] = ToolCallDelta(
                last.index, last.id, last.name, last.arguments + delta.arguments, last.choice
            )
            continue
        merged.append(delta)
    return merged
