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

__all__ = ["DEFAULT_ERROR_MESSAGE", "AnswerFeed", "RelayFormat", "relay_answer"]

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
    feed = AnswerFeed(
        stream, formatter, coalesce_window=coalesce_window, error_message=error_message
    )
    while events := await feed.next_batch(max_batch):
        for event in events:
            await emit(event)
    return stream.result


class AnswerFeed:
    """One answer as the feed of an :class:`EventStream` (internal): no task of its own.

    The stream's writer pulls the upstream's deltas and formats them itself,
    as :func:`relay_answer` would push them: the opening events, then each
    batch of deltas (``coalesce_window`` as there), then the closing or
    failure events. One task and one channel fewer between the upstream and
    the socket: the first token reaches the client sooner. Cancellation (the
    client gone, a keepalive due) takes nothing: :meth:`ChatStream.receive_batch`
    keeps what it had taken for the next call.
    """

    __slots__ = (
        "_coalesce_window",
        "_ended",
        "_error_message",
        "_formatter",
        "_ready",
        "_stream",
        "failed",
    )

    has_task = False  # the writer's own calls drive it

    def __init__(
        self,
        stream: ChatStream,
        formatter: Formatter,
        *,
        coalesce_window: float = 0.0,
        error_message: str = DEFAULT_ERROR_MESSAGE,
    ) -> None:
        self._stream = stream
        self._formatter = formatter
        self._coalesce_window = coalesce_window
        self._error_message = error_message
        self._ready: list[Event] = formatter.opening()
        self._ended = False
        self.failed = False  # upstream failures become the answer's own error events

    async def next_batch(self, max_events: int) -> list[Event]:
        """The next events of the answer (``[]`` after the last); see the class docstring."""
        if self._ready:
            # The opening, with the tokens already here: the first token need
            # not wait for a write of its own.
            batch, self._ready = self._ready, []
            batch += self._formatter.deltas(self._stream.take_queued(max_events))
            await trio.lowlevel.cancel_shielded_checkpoint()  # nothing is lost to a cancel
            return batch
        if self._ended:
            await trio.lowlevel.checkpoint()
            return []
        # Until a batch makes an event (a usage delta alone makes none); each
        # receive_batch checkpoints, and raises or returns [] at the end.
        while True:  # noqa: ASYNC913
            try:
                deltas = await self._stream.receive_batch(max_events, window=self._coalesce_window)
            except UpstreamError as exc:
                logger.warning("answer %s failed: %s", self._stream.result.id, exc)
                self._ended = True
                return self._formatter.failure(self._error_message)  # noqa: ASYNC910
            if not deltas:
                self._ended = True
                return self._formatter.closing()  # noqa: ASYNC910
            events = self._formatter.deltas(deltas)
            if events:
                return events  # noqa: ASYNC910

    async def run(self) -> None:
        """Nothing to run: the writer's calls drive the feed."""
        await trio.lowlevel.checkpoint()

    def backlog(self) -> tuple[int, int]:
        """Deltas waiting (each is at most one event), and the channel's capacity."""
        stats = self._stream.statistics()
        return len(self._ready) + self._stream.queued(), int(stats.max_buffer_size)
