"""`OpenAIUpstream`: stream answers from any OpenAI-compatible server over httpx."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from functools import partial
from types import TracebackType
from typing import Any

import httpx
import trio

from ..protocol import (
    ChatChunkParser,
    ChatDelta,
    ChunkDecodeError,
    ErrorDelta,
    Event,
    IncompleteStreamError,
    SSEDecodeError,
    SSEDecoder,
)
from ..sse._client_connection import unwind_httpx_stream
from ._errors import (
    UpstreamConnectionError,
    UpstreamHTTPError,
    UpstreamProtocolError,
    UpstreamStreamError,
)
from ._stream import DEFAULT_STREAM_CAPACITY, ChatStream, GenerationResult, open_delta_stream

__all__ = ["OpenAIUpstream"]

logger = logging.getLogger("trio_stream.llm")

# How long to keep reading after [DONE] so that the response body ends by itself
# and its connection goes back to the pool (instead of being closed).
_DONE_GRACE = 0.05
_MAX_ERROR_BODY = 8 * 1024


class OpenAIUpstream:
    """A client for ``POST {base_url}/chat/completions`` streams (OpenAI, vLLM, llama.cpp,
    Ollama's ``/v1``...). ``base_url`` ends with ``/v1``.

    ``open_chat_stream(request)`` sends the request with ``stream: true`` (and
    ``stream_options.include_usage`` when ``include_usage``), checks the
    answer (a non-200 status raises :class:`UpstreamHTTPError` there, with a
    short excerpt of the body for logs; a content type other than
    ``text/event-stream`` raises :class:`UpstreamProtocolError`), then yields
    a :class:`ChatStream` of typed deltas. The body goes through
    :class:`SSEDecoder` (never ``aiter_lines``) and :class:`ChatChunkParser`.
    Mid-stream, an ``error`` object raises :class:`UpstreamStreamError`, a
    cut connection :class:`UpstreamConnectionError`, and an end of stream
    before any ``finish_reason`` :class:`UpstreamProtocolError`; an end after
    a ``finish_reason`` without ``[DONE]`` is a clean end.

    Cancellation: leaving the ``async with`` cancels the reader task, and
    httpx closes the upstream connection at once (the upstream server sees
    the client go and can stop generating). The read is stopped by
    cancelling a scope, never by abandoning httpx's iterator.

    Timeouts are per request: ``read_timeout`` (default 300 s) bounds the wait
    for each piece of the body, generous because a large prompt's first token
    can take minutes; ``connect_timeout`` and ``write_timeout`` are short.
    ``capacity`` bounds deltas read ahead of the consumer (backpressure).
    Pass ``client`` to share an ``httpx.AsyncClient``; otherwise one is
    created and :meth:`aclose` (or ``async with``) closes it.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 300.0,
        write_timeout: float = 30.0,
        capacity: int = DEFAULT_STREAM_CAPACITY,
        include_usage: bool = True,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.include_usage = include_usage
        self.capacity = capacity
        self._timeout = httpx.Timeout(
            connect=connect_timeout, read=read_timeout, write=write_timeout, pool=connect_timeout
        )
        self._headers = {"accept": "text/event-stream", **(headers or {})}
        if api_key is not None:
            self._headers["authorization"] = f"Bearer {api_key}"
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(timeout=self._timeout)

    async def aclose(self) -> None:
        """Close the httpx client if this object created it."""
        if self._owns_client:
            await self._client.aclose()
        else:
            await trio.lowlevel.checkpoint()

    async def __aenter__(self) -> OpenAIUpstream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def request_body(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """The body sent upstream: ``request`` with streaming (and usage) switched on."""
        body = dict(request)
        body["stream"] = True
        if self.model is not None:
            body.setdefault("model", self.model)
        if self.include_usage:
            options = body.get("stream_options")
            body["stream_options"] = {
                **(options if isinstance(options, dict) else {}),
                "include_usage": True,
            }
        return body

    def open_chat_stream(
        self, request: Mapping[str, Any], *, result: GenerationResult | None = None
    ) -> AbstractAsyncContextManager[ChatStream]:
        """Start one streamed answer; see the class docstring. ``result`` is filled live."""
        body = self.request_body(request)
        if result is not None and result.model is None:
            model = body.get("model")
            result.model = model if isinstance(model, str) else None
        return open_delta_stream(
            partial(self._produce, body), capacity=self.capacity, result=result
        )

    async def list_models(self) -> list[dict[str, Any]]:
        """The upstream's ``GET /models`` list (its ``data``)."""
        try:
            response = await self._client.get(
                f"{self.base_url}/models", headers=self._headers, timeout=self._timeout
            )
        except httpx.HTTPError as exc:
            raise UpstreamConnectionError(f"upstream unreachable: {exc!r}") from exc
        if response.status_code != 200:
            raise UpstreamHTTPError(response.status_code, response.text[:_MAX_ERROR_BODY])
        try:
            data = response.json()["data"]
        except (ValueError, KeyError, TypeError) as exc:
            raise UpstreamProtocolError("the upstream's model list is malformed") from exc
        if not isinstance(data, list):
            raise UpstreamProtocolError("the upstream's model list is malformed")
        return [entry for entry in data if isinstance(entry, dict)]

    async def _produce(
        self,
        body: dict[str, Any],
        send_channel: trio.MemorySendChannel[ChatDelta],
        started: Callable[[], None],
    ) -> None:
        parser = ChatChunkParser()
        url = f"{self.base_url}/chat/completions"
        try:
            async with self._client.stream(
                "POST", url, json=body, headers=self._headers, timeout=self._timeout
            ) as response:
                if response.status_code != 200:
                    excerpt = await _read_excerpt(response)
                    raise UpstreamHTTPError(response.status_code, _error_text(excerpt))
                _check_content_type(response)
                started()
                await _read_stream(response, parser, send_channel)
        except httpx.HTTPError as exc:
            if not (isinstance(exc, httpx.TransportError) and parser.finished):
                raise UpstreamConnectionError(f"upstream connection failed: {exc!r}") from exc
            logger.debug("upstream connection dropped after the answer finished: %r", exc)
        except (ChunkDecodeError, SSEDecodeError) as exc:
            raise UpstreamProtocolError(f"malformed upstream stream: {exc}") from exc
        except IncompleteStreamError as exc:
            raise UpstreamProtocolError("the upstream stream ended before the answer") from exc
        await trio.lowlevel.checkpoint()  # every path of a task function checkpoints


def _check_content_type(response: httpx.Response) -> None:
    content_type = response.headers.get("content-type", "")
    if not content_type.lower().startswith("text/event-stream"):
        raise UpstreamProtocolError(f"expected text/event-stream, got {content_type[:100]!r}")


async def _read_excerpt(response: httpx.Response) -> bytes:
    """Up to ``_MAX_ERROR_BODY`` bytes of an error body (the read stops by cancellation)."""
    excerpt = bytearray()
    with trio.CancelScope() as scope:
        async for piece in response.aiter_bytes():
            excerpt += piece
            if len(excerpt) >= _MAX_ERROR_BODY:
                scope.cancel()
    return bytes(excerpt[:_MAX_ERROR_BODY])


def _error_text(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    try:
        message = json.loads(text)["error"]["message"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return text
    return message if isinstance(message, str) else text


async def _read_stream(
    response: httpx.Response,
    parser: ChatChunkParser,
    send_channel: trio.MemorySendChannel[ChatDelta],
) -> None:
    decoder = SSEDecoder()
    failure: Exception | None = None
    # Every way out of the body loop goes through this scope: raising or breaking out
    # of httpx's iterator would abandon its async generators (trio cannot close them).
    chunks = response.aiter_bytes()
    try:
        with trio.CancelScope() as reading:
            async for piece in chunks:
                try:
                    deltas, failure = _parse(decoder.feed(piece), parser)
                except (ChunkDecodeError, SSEDecodeError) as exc:
                    deltas, failure = [], exc
                for delta in deltas:
                    await send_channel.send(delta)
                if failure is not None:
                    reading.cancel()
                elif parser.done:
                    # Give the body a moment to end by itself (keeps the connection
                    # reusable), then stop reading by cancellation.
                    reading.deadline = min(reading.deadline, trio.current_time() + _DONE_GRACE)
    finally:
        # A cancellation that lands on `send` (the client left) stops us in the
        # loop body with httpx's generators suspended: unwind them here, in a
        # scope cancelled on entry, so nothing is left for the garbage collector.
        with trio.move_on_after(0, shield=True):
            await unwind_httpx_stream(chunks)
    if failure is not None:
        raise failure
    if not reading.cancelled_caught:
        parser.end_of_stream()


def _parse(
    events: list[Event], parser: ChatChunkParser
) -> tuple[list[ChatDelta], UpstreamStreamError | None]:
    """The deltas of ``events``, up to an upstream ``error`` object (returned apart)."""
    deltas: list[ChatDelta] = []
    for event in events:
        for delta in parser.feed(event.data, event.event):
            if isinstance(delta, ErrorDelta):
                return deltas, UpstreamStreamError(delta.message, delta.type, delta.code)
            deltas.append(delta)
    return deltas, None
