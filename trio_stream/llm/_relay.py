"""Relaying one answer to a client: deltas in, SSE events of the chosen wire format out."""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Awaitable, Callable

import trio

from ..protocol import (
    DONE,
    ChatChunkEncoder,
    ChatDelta,
    ErrorDelta,
    Event,
    FinishDelta,
    UIMessageStreamEncoder,
    coalesce_deltas,
    encode_ui_part,
)
from ._errors import UpstreamError
from ._stream import ChatStream, GenerationResult

__all__ = ["DEFAULT_ERROR_MESSAGE", "RelayFormat", "relay_answer"]

logger = logging.getLogger("trio_stream.llm")

DEFAULT_ERROR_MESSAGE = "The model failed to answer."
"""What a client is told when the upstream fails: a fixed text, never the upstream's own."""

DONE_EVENT = Event(DONE)


class RelayFormat(enum.Enum):
    """The wire format a relay speaks to its client."""

    OPENAI = "openai"
    """OpenAI ``chat.completion.chunk`` events, then ``data: [DONE]`` (any OpenAI client)."""
    AI_SDK = "ai-sdk"
    """The AI SDK v5 UI message stream (``useChat`` / ``DefaultChatTransport``)."""


class Formatter:
    """Turns one answer's deltas into the events of a :class:`RelayFormat` (internal)."""

    def __init__(self, format: RelayFormat, message_id: str, model: str) -> None:
        self.format = format
        self._ui = UIMessageStreamEncoder(message_id)
        self._chunks = ChatChunkEncoder(f"chatcmpl-{message_id}", model, int(time.time()))
        self._finish_reason: str | None = None

    def _ui_events(self, parts: list[dict[str, object]]) -> list[Event]:
        return [Event(encode_ui_part(part)) for part in parts]

    def opening(self) -> list[Event]:
        """The first events: the role chunk, or the ``start`` part."""
        if self.format is RelayFormat.OPENAI:
            return [Event(self._chunks.role_chunk())]
        return self._ui_events(self._ui.start())

    def deltas(self, deltas: list[ChatDelta]) -> list[Event]:
        """Events for a batch of deltas (neighbours merged into one event)."""
        events: list[Event] = []
        for delta in coalesce_deltas(deltas):
            if self.format is RelayFormat.OPENAI:
                events.append(Event(self._chunks.encode(delta)))
            else:
                if isinstance(delta, FinishDelta) and delta.choice == 0:
                    self._finish_reason = delta.reason
                events.extend(self._ui_events(self._ui.feed(delta)))
        return events

    def closing(self) -> list[Event]:
        """The end of a complete answer (``finish``) and ``[DONE]``."""
        if self.format is RelayFormat.OPENAI:
            return [DONE_EVENT]
        return [*self._ui_events(self._ui.finish(self._finish_reason)), DONE_EVENT]

    def failure(self, message: str) -> list[Event]:
        """The end of a failed answer: an error (a whole part / object) and ``[DONE]``."""
        if self.format is RelayFormat.OPENAI:
            error = ErrorDelta(message, "upstream_error")
            return [Event(self._chunks.encode(error)), DONE_EVENT]
        return [*self._ui_events(self._ui.error(message)), DONE_EVENT]

    def stopped(self) -> list[Event]:
        """The end of an answer stopped on purpose: ``abort`` (AI SDK) and ``[DONE]``."""
        if self.format is RelayFormat.OPENAI:
            return [DONE_EVENT]
        return [*self._ui_events(self._ui.abort()), DONE_EVENT]


Emit = Callable[[Event], Awaitable[object]]


async def relay_answer(
    stream: ChatStream,
    formatter: Formatter,
    emit: Emit,
    *,
    coalesce_window: float = 0.0,
    max_batch: int = 64,
    error_message: str = DEFAULT_ERROR_MESSAGE,
) -> GenerationResult:
    """Send ``stream``'s answer through ``emit`` as events, from opening to ``[DONE]``.

    Deltas already queued are merged into one event; with ``coalesce_window``
    > 0, so are those arriving within that many seconds after the first of a
    batch (fewer, larger events at a small latency cost). An upstream failure
    ends the answer with ``error_message`` (logged in full, never forwarded).
    Cancellation (client gone) stops it between two events; ``emit`` provides
    the backpressure (a bounded channel send, or a Hub publish).
    """
    for event in formatter.opening():
        await emit(event)
    try:
        while batch := await stream.receive_batch(max_batch, window=coalesce_window):
            for event in formatter.deltas(batch):
                await emit(event)
    except UpstreamError as exc:
        logger.warning("answer %s failed: %s", stream.result.id, exc)
        ending = formatter.failure(error_message)
    else:
        ending = formatter.closing()
    for event in ending:
        await emit(event)
    await trio.lowlevel.checkpoint()
    return stream.result
