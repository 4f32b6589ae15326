"""`LocalTokenSource`: an embedded stand-in for a model — no network, no weights."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import Any

import trio

from ..protocol import ChatDelta, ContentDelta, FinishDelta, ReasoningDelta, Usage
from ._stream import DEFAULT_STREAM_CAPACITY, ChatStream, GenerationResult, open_delta_stream

__all__ = ["LocalTokenSource"]

_SENTENCES = (
    "Tokens arrive one at a time, so the page can show them as soon as they exist.",
    "Each answer streams through a bounded channel, and a slow reader slows the producer.",
    "When the browser goes away, the upstream request is cancelled at once to save cost.",
    "A detached answer keeps generating into history, and a client can resume it by id.",
    "Trio's nurseries own every background task, so cancellation always cleans up.",
    "Server-Sent Events are plain HTTP: proxies, curl and EventSource all understand them.",
    "The relay counts delivered tokens, so even a stopped answer has a usage figure.",
    "Backpressure is modelled end to end with memory channels of explicit capacity.",
    "A keepalive comment every few seconds keeps idle proxies from closing the stream.",
    "Reconnecting clients send Last-Event-ID and pick up exactly where they left off.",
    "This text comes from a small embedded generator, deterministic for a given seed.",
    "Nothing here loads model weights: it only imitates the pace of a real model.",
)
_THOUGHTS = (
    "The user wants a short explanation.",
    "I should mention streaming and cancellation.",
    "Keep it friendly and concrete.",
)
_TOKEN = re.compile(r"\s*[\w'-]+|\s*[^\w\s]")


def _prompt_text(request: Mapping[str, Any]) -> str:
    messages = request.get("messages")
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else ""
    return ""


def tokenize(text: str) -> list[str]:
    """Split ``text`` into word-like tokens (leading space kept), losslessly for single
    spaces between words, as a model's tokenizer would stream them."""
    return _TOKEN.findall(text)


class LocalTokenSource:
    """A deterministic, self-contained token source with realistic pacing (the demo default).

    Implements the same interface as :class:`OpenAIUpstream`
    (``open_chat_stream``, ``list_models``), so relays and the demo treat it
    as just another upstream. The answer depends only on ``seed`` and the
    last user message: a few sentences about streaming, split into
    word-like tokens. Pacing imitates a model: ``first_token_delay``
    seconds before the first token, then about ``tokens_per_second`` with
    ``jitter`` (a fraction: 0.5 means ±25 %), drawn from the same seeded
    generator, so runs are reproducible (and instant under trio's
    ``autojump_clock``). ``reasoning=True`` streams a short
    ``reasoning_content`` first. ``max_tokens`` in the request (or
    ``max_tokens`` here) cuts the answer with ``finish_reason: "length"``.
    Usage is reported when the request sets ``stream_options.include_usage``.

    Cancellation: leaving ``open_chat_stream``'s block stops the generator
    task at once. ``capacity`` bounds the deltas produced ahead of the reader.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        model: str = "trio-stream-local",
        tokens_per_second: float = 40.0,
        first_token_delay: float = 0.25,
        jitter: float = 0.5,
        sentences: int = 4,
        max_tokens: int = 512,
        reasoning: bool = False,
        capacity: int = DEFAULT_STREAM_CAPACITY,
    ) -> None:
        if tokens_per_second <= 0 or first_token_delay < 0 or not 0 <= jitter < 2:
            raise ValueError("need tokens_per_second > 0, first_token_delay >= 0, 0 <= jitter < 2")
        if sentences < 1 or max_tokens < 1 or capacity < 1:
            raise ValueError("sentences, max_tokens and capacity must be >= 1")
        self.seed = seed
        self.model = model
        self.tokens_per_second = tokens_per_second
        self.first_token_delay = first_token_delay
        self.jitter = jitter
        self.sentences = sentences
        self.max_tokens = max_tokens
        self.reasoning = reasoning
        self.capacity = capacity

    def _random(self, request: Mapping[str, Any]) -> random.Random:
        # A str seed is hashed with SHA-512: stable across runs and processes.
        return random.Random(f"{self.seed}\0{_prompt_text(request)}")

    def answer(self, request: Mapping[str, Any]) -> str:
        """The full text the source answers ``request`` with (before any ``max_tokens`` cut)."""
        rng = self._random(request)
        prompt = " ".join(_prompt_text(request).split()[:8])
        opening = f'You asked: "{prompt}". ' if prompt else ""
        return opening + " ".join(rng.sample(_SENTENCES, min(self.sentences, len(_SENTENCES))))

    def _limit(self, request: Mapping[str, Any]) -> int:
        limit = request.get("max_tokens") or request.get("max_completion_tokens")
        if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
            return min(limit, self.max_tokens)
        return self.max_tokens

    def open_chat_stream(
        self, request: Mapping[str, Any], *, result: GenerationResult | None = None
    ) -> AbstractAsyncContextManager[ChatStream]:
        """Start one answer; the stream opens at once (there is nothing to connect to)."""
        if result is not None and result.model is None:
            result.model = self.model
        return open_delta_stream(
            partial(self._produce, dict(request)), capacity=self.capacity, result=result
        )

    async def list_models(self) -> list[dict[str, Any]]:
        """One model: this source's ``model`` name."""
        await trio.lowlevel.checkpoint()
        return [{"id": self.model, "object": "model", "created": 0, "owned_by": "trio-stream"}]

    async def _produce(
        self,
        request: dict[str, Any],
        send_channel: trio.MemorySendChannel[ChatDelta],
        started: Callable[[], None],
    ) -> None:
        started()
        pace = random.Random(f"pace\0{self.seed}\0{_prompt_text(request)}")
        tokens = tokenize(self.answer(request))
        limit = self._limit(request)
        reason = "length" if len(tokens) > limit else "stop"
        tokens = tokens[:limit]
        mean = 1.0 / self.tokens_per_second

        async def pause() -> None:
            await trio.sleep(mean * (1.0 + self.jitter * (pace.random() - 0.5)))

        await trio.sleep(self.first_token_delay)
        if self.reasoning:
            for token in tokenize(" ".join(_THOUGHTS)):
                await send_channel.send(ReasoningDelta(token))
                await pause()
        for index, token in enumerate(tokens):
            if index:
                await pause()
            await send_channel.send(ContentDelta(token))
        await send_channel.send(FinishDelta(reason))
        options = request.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            messages = request.get("messages")
            prompt_tokens = sum(
                len(tokenize(str(m.get("content", ""))))
                for m in (messages if isinstance(messages, list) else [])
                if isinstance(m, dict)
            )
            await send_channel.send(Usage(prompt_tokens, len(tokens), prompt_tokens + len(tokens)))
