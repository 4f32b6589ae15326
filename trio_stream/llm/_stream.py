"""One answer as a stream of deltas: `ChatStream`, its live `GenerationResult`, and the
`ChatUpstream` protocol that every token source (HTTP upstream, local) implements."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import trio

from ..core._groups import collapse_group, reraise
from ..protocol import (
    ChatDelta,
    ContentDelta,
    FinishDelta,
    ReasoningDelta,
    ToolCallDelta,
    TrioStreamError,
    Usage,
)
from ._errors import UpstreamError

__all__ = [
    "DEFAULT_STREAM_CAPACITY",
    "ChatStream",
    "ChatUpstream",
    "GenerationResult",
    "GenerationStatus",
    "open_delta_stream",
]

logger = logging.getLogger("trio_stream.llm")

DEFAULT_STREAM_CAPACITY = 32
"""Deltas buffered between an upstream reader and its consumer: small, because a single
answer to a single client uses backpressure (a slow client slows the upstream read)."""

GenerationStatus = Literal["running", "finished", "cancelled", "failed"]


@dataclass(eq=False)
class GenerationResult:
    """The live account of one answer: what the application needs for billing and metrics.

    Updated as the answer streams, final once ``status`` is no longer
    ``"running"``. ``delivered_tokens`` counts the token deltas (text,
    reasoning, tool-call fragments) handed on towards the client, so a
    cancelled answer still has a usage figure; ``usage`` is what the upstream
    reported, when it did (usually only at the very end). ``error`` is the
    upstream failure (for logs; clients get a sanitised message). Times are
    ``trio.current_time()`` values.
    """

    id: str = ""
    model: str | None = None
    status: GenerationStatus = "running"
    finish_reason: str | None = None
    delivered_tokens: int = 0
    usage: Usage | None = None
    error: UpstreamError | None = None
    started_at: float = field(default_factory=trio.current_time)
    first_token_at: float | None = None
    ended_at: float | None = None

    @property
    def time_to_first_token(self) -> float | None:
        """Seconds from the start to the first token, or None before it."""
        return None if self.first_token_at is None else self.first_token_at - self.started_at

    @property
    def completion_tokens(self) -> int:
        """The upstream's completion-token count when reported, else ``delivered_tokens``."""
        if self.usage is not None and self.usage.completion_tokens is not None:
            return self.usage.completion_tokens
        return self.delivered_tokens

    def end(self, status: GenerationStatus, error: UpstreamError | None = None) -> None:
        """Record the outcome once (later calls are ignored)."""
        if self.status != "running":
            return
        self.status = status
        self.error = error
        self.ended_at = trio.current_time()

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (for logs and metrics), without the error's text."""
        return {
            "id": self.id,
            "model": self.model,
            "status": self.status,
            "finish_reason": self.finish_reason,
            "delivered_tokens": self.delivered_tokens,
            "usage": None if self.usage is None else self.usage.as_dict(),
            "error": None if self.error is None else type(self.error).__name__,
            "time_to_first_token": self.time_to_first_token,
        }


_TOKEN_TYPES = (ContentDelta, ReasoningDelta, ToolCallDelta)


class ChatStream:
    """The deltas of one answer, as an async iterable, with its :class:`GenerationResult`.

    Iteration ends when the model finished; an upstream failure after the
    stream opened is raised from iteration as an :class:`UpstreamError`
    (after the deltas that preceded it). Obtained from
    ``upstream.open_chat_stream(request)``; leaving that ``async with`` stops
    the upstream at once (its connection is closed) and marks the result
    ``cancelled`` if it had not ended.
    """

    def __init__(
        self, receive: trio.MemoryReceiveChannel[ChatDelta], result: GenerationResult
    ) -> None:
        self._receive = receive
        self.result = result
        self._error: UpstreamError | None = None
        self._held: list[ChatDelta] = []  # taken by a cancelled receive_batch

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> ChatDelta:
        if self._held:
            await trio.lowlevel.cancel_shielded_checkpoint()
            delta = self._held.pop(0)
            self._account(delta)
            return delta
        try:
            delta = await self._receive.receive()
        except trio.EndOfChannel:
            self._end()
            raise StopAsyncIteration from None
        self._account(delta)
        return delta

    async def receive_batch(self, max_deltas: int = 64, *, window: float = 0.0) -> list[ChatDelta]:
        """Wait for one delta, then take what is already queued (up to ``max_deltas``) and
        what arrives within ``window`` seconds more: tokens that came together go out as
        one event. Returns ``[]`` at the end; raises the upstream's error after the last.

        Cancellation loses nothing: deltas taken before it are returned by the next call.
        """
        if self._held:
            batch, self._held = self._held, []
            await trio.lowlevel.cancel_shielded_checkpoint()
        else:
            try:
                batch = [await self._receive.receive()]
            except trio.EndOfChannel:
                await trio.lowlevel.checkpoint()
                self._end()
                return []
        if window <= 0:
            while len(batch) < max_deltas:
                try:
                    batch.append(self._receive.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
        else:
            try:
                with trio.move_on_after(window):  # noqa: ASYNC912  awaits unless already full
                    while len(batch) < max_deltas:
                        try:
                            batch.append(await self._receive.receive())
                        except trio.EndOfChannel:
                            break
            except trio.Cancelled:
                self._held = batch
                raise
        for delta in batch:
            self._account(delta)
        return batch

    def take_queued(self, max_deltas: int) -> list[ChatDelta]:
        """The deltas already received, up to ``max_deltas``, without waiting (no checkpoint).

        The end of the answer (or its error) is left for :meth:`receive_batch`.
        """
        batch, self._held = self._held[:max_deltas], self._held[max_deltas:]
        while len(batch) < max_deltas:
            try:
                batch.append(self._receive.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        for delta in batch:
            self._account(delta)
        return batch

    def queued(self) -> int:
        """Deltas received from the upstream and not yet taken (no checkpoint)."""
        return len(self._held) + self._receive.statistics().current_buffer_used

    def _end(self) -> None:
        if self._error is not None:
            self.result.end("failed", self._error)
            raise self._error
        self.result.end("finished")

    def _account(self, delta: ChatDelta) -> None:
        result = self.result
        if isinstance(delta, _TOKEN_TYPES):
            result.delivered_tokens += 1
            if result.first_token_at is None:
                result.first_token_at = trio.current_time()
        elif isinstance(delta, FinishDelta):
            if result.finish_reason is None:
                result.finish_reason = delta.reason
        elif isinstance(delta, Usage):
            result.usage = delta

    def statistics(self) -> trio.MemoryChannelStatistics:
        """The buffer between upstream reader and consumer (queued deltas, capacity)."""
        return self._receive.statistics()


class DeltaProducer(Protocol):
    """``async def produce(send_channel, started)``: connect, call ``started()``, send deltas.

    Raising an :class:`UpstreamError` before ``started()`` fails the opening;
    after it, the error is raised from the stream's iteration instead.
    """

    def __call__(
        self, send_channel: trio.MemorySendChannel[ChatDelta], started: Callable[[], None]
    ) -> Awaitable[None]: ...


class ChatUpstream(Protocol):
    """What the relay needs of a token source: an OpenAI-compatible server or a local one."""

    def open_chat_stream(
        self, request: Mapping[str, Any], *, result: GenerationResult | None = None
    ) -> AbstractAsyncContextManager[ChatStream]:
        """Start one answer for ``request`` (an OpenAI chat-completions body)."""
        ...

    async def list_models(self) -> list[dict[str, Any]]:
        """The ``data`` of an OpenAI ``/v1/models`` answer."""
        ...


@asynccontextmanager
async def open_delta_stream(
    produce: DeltaProducer,
    *,
    capacity: int = DEFAULT_STREAM_CAPACITY,
    result: GenerationResult | None = None,
) -> AsyncIterator[ChatStream]:
    """Run ``produce`` in a task feeding a :class:`ChatStream` through a bounded channel.

    Waits until ``produce`` calls ``started()`` (connected, headers checked):
    an error before that is raised here. Leaving the block cancels the
    producer (it never outlives the block) and marks an unfinished result
    ``cancelled``. ``capacity`` bounds the deltas read ahead of the consumer.
    """
    if capacity < 1:
        raise ValueError("capacity must be >= 1")
    send_channel, receive_channel = trio.open_memory_channel[ChatDelta](capacity)
    stream = ChatStream(receive_channel, result if result is not None else GenerationResult())

    async def run(  # noqa: ASYNC114  a local task, started once just below
        *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        opened = False

        def started() -> None:
            nonlocal opened
            opened = True
            task_status.started()

        failure: UpstreamError | None = None
        with send_channel:
            try:
                await produce(send_channel, started)
            except UpstreamError as exc:
                if not opened:
                    raise
                failure = exc
        if failure is not None:
            logger.warning("upstream failed mid-answer: %s", failure)
            stream._error = failure
        await trio.lowlevel.checkpoint()  # produce() may return at once (a checkpoint rule)

    try:
        with receive_channel:
            async with trio.open_nursery() as nursery:
                try:
                    await nursery.start(run)
                except UpstreamError as exc:
                    stream.result.end("failed", exc)
                    raise
                try:
                    yield stream
                finally:
                    nursery.cancel_scope.cancel()
                    stream.result.end("cancelled")
    except BaseExceptionGroup as group:
        leaf = collapse_group(group)
        if leaf is None:
            raise TrioStreamError("the upstream stream failed") from group
        reraise(leaf)
