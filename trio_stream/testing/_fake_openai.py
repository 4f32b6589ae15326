"""`FakeOpenAI`: an OpenAI-compatible chat-completions server for tests and benchmarks.

A plain ASGI app (run it with :func:`trio_stream.serve` or
:func:`open_test_server`) that speaks the real wire format — role chunk,
content chunks, finish chunk, optional usage chunk, ``data: [DONE]`` — and
can misbehave on demand: an error object mid-stream, an end without
``[DONE]``, a cut stream, a non-200 status, chunks split inside UTF-8
characters. Every request is recorded, including whether (and when) its client
disconnected and how many tokens went out, so a test can assert that a relay
closed its upstream connection.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from ..sse._asgi import Receive, Scope, Send, handle_lifespan, send_json, send_plain

__all__ = ["FakeOpenAI", "FakeRequest"]

logger = logging.getLogger("trio_stream.testing")

DEFAULT_TOKENS = ("Hello", ",", " world", "!")
_MAX_BODY = 1024 * 1024


@dataclass
class FakeRequest:
    """What :class:`FakeOpenAI` saw of one request, updated live.

    ``disconnected`` is True when the client went away before the response
    was complete, at ``disconnected_at`` (``time.perf_counter()``);
    ``tokens_sent`` counts content tokens written; ``ended`` is set when the
    response finished for any reason.
    """

    __test__ = False  # not a pytest test class

    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    tokens_sent: int = 0
    completed: bool = False
    disconnected: bool = False
    disconnected_at: float | None = None
    first_token_at: float | None = None
    ended: trio.Event = field(default_factory=trio.Event)


class FakeOpenAI:
    """An ASGI app serving ``POST /v1/chat/completions`` and ``GET /v1/models``.

    Streams ``tokens`` (``reasoning`` first, as ``reasoning_content``), one
    chunk each, ``delay`` seconds apart after a ``first_token_delay``; the
    request's ``max_tokens`` cuts the answer (``finish_reason: "length"``).
    Misbehaviour, for tests:

    * ``error_after=N``: after N tokens, an ``error`` object then ``[DONE]``;
    * ``eof_after=N``: after N tokens the body just ends (no finish, no ``[DONE]``);
    * ``send_done=False``: the finish chunk, then the end without ``[DONE]``;
    * ``hold_after=N``: after N tokens, wait until the client disconnects;
    * ``status=429`` (any non-200): a JSON error body with that status;
    * ``split_utf8=True``: each chunk goes out in two writes, cut inside a
      multi-byte character when it has one.

    ``usage`` None sends the usage chunk (``choices: []``) only when the
    request asks (``stream_options.include_usage``), True always, False never.
    ``stream: false`` gets one ``chat.completion`` JSON object. Each request is
    appended to ``requests`` as a :class:`FakeRequest`.
    """

    def __init__(
        self,
        tokens: Sequence[str] = DEFAULT_TOKENS,
        *,
        reasoning: Sequence[str] = (),
        model: str = "fake-model",
        delay: float = 0.0,
        first_token_delay: float = 0.0,
        error_after: int | None = None,
        error_message: str = "the fake upstream failed",
        eof_after: int | None = None,
        send_done: bool = True,
        hold_after: int | None = None,
        status: int = 200,
        usage: bool | None = None,
        split_utf8: bool = False,
    ) -> None:
        self.tokens = list(tokens)
        self.reasoning = list(reasoning)
        self.model = model
        self.delay = delay
        self.first_token_delay = first_token_delay
        self.error_after = error_after
        self.error_message = error_message
        self.eof_after = eof_after
        self.send_done = send_done
        self.hold_after = hold_after
        self.status = status
        self.usage = usage
        self.split_utf8 = split_utf8
        self.requests: list[FakeRequest] = []
        self._serial = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI call."""
        if scope["type"] == "lifespan":
            await handle_lifespan(receive, send)
            return
        if scope["type"] != "http":
            await trio.lowlevel.checkpoint()
            return
        path, method = scope["path"], scope["method"]
        if path == "/v1/models" and method == "GET":
            await send_json(send, 200, self.models())
        elif path == "/v1/chat/completions" and method == "POST":
            await self._chat(scope, receive, send)
        else:
            await send_plain(send, 404, "not found")

    def models(self) -> dict[str, Any]:
        """The ``/v1/models`` answer: one model."""
        entry = {"id": self.model, "object": "model", "created": 0, "owned_by": "trio-stream"}
        return {"object": "list", "data": [entry]}

    async def _chat(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            raw += message.get("body", b"")
            if len(raw) > _MAX_BODY:
                await send_plain(send, 413, "request body too large")
                return
            if not message.get("more_body", False):
                break
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            await self._send_error(send, 400, "the request body is not a JSON object")
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        request = FakeRequest(scope["path"], body, headers)
        self.requests.append(request)
        try:
            if self.status != 200:
                await self._send_error(send, self.status, self.error_message)
            elif body.get("stream"):
                await self._stream_watching_disconnect(request, receive, send)
            else:
                await send_json(send, 200, self._completion(request))
                request.completed = True
        finally:
            request.ended.set()

    def _answer(self, body: dict[str, Any]) -> tuple[list[str], str]:
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        if isinstance(limit, int) and limit < len(self.tokens):
            return self.tokens[:limit], "length"
        return self.tokens, "stop"

    def _usage(self, body: dict[str, Any], completion_tokens: int) -> dict[str, int]:
        prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt + completion_tokens,
        }

    def _completion(self, request: FakeRequest) -> dict[str, Any]:
        tokens, reason = self._answer(request.body)
        request.tokens_sent = len(tokens)
        message = {"role": "assistant", "content": "".join(tokens)}
        return {
            "id": self._next_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": reason}],
            "usage": self._usage(request.body, len(tokens)),
        }

    def _next_id(self) -> str:
        self._serial += 1
        return f"chatcmpl-fake{self._serial}"

    async def _stream_watching_disconnect(
        self, request: FakeRequest, receive: Receive, send: Send
    ) -> None:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                if not request.completed:
                    request.disconnected_at = time.perf_counter()
                    request.disconnected = True
                    logger.debug("fake upstream: client disconnected")
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
            await self._stream(request, send)
            nursery.cancel_scope.cancel()

    async def _stream(self, request: FakeRequest, send: Send) -> None:
        body = request.body
        tokens, reason = self._answer(body)
        base = {
            "id": self._next_id(),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model,
        }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return {**base, "choices": [choice]}

        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        await self._event(send, chunk({"role": "assistant", "content": ""}))
        await trio.sleep(self.first_token_delay)
        for text in self.reasoning:
            await self._event(send, chunk({"reasoning_content": text}))
            await trio.sleep(self.delay)
        for index, text in enumerate(tokens):
            if index == self.hold_after:
                await trio.sleep_forever()
            if index == self.error_after:
                error = {"message": self.error_message, "type": "server_error", "code": "fake"}
                await self._event(send, {"error": error})
                await self._end(request, send, b"data: [DONE]\n\n")
                return
            if index == self.eof_after:
                await self._end(request, send, b"")
                return
            if index:
                await trio.sleep(self.delay)
            await self._event(send, chunk({"content": text}))
            request.tokens_sent += 1
            if request.first_token_at is None:
                request.first_token_at = time.perf_counter()
        await self._event(send, chunk({}, reason))
        include = (body.get("stream_options") or {}).get("include_usage")
        if self.usage or (self.usage is None and include):
            usage_chunk = {**base, "choices": [], "usage": self._usage(body, len(tokens))}
            await self._event(send, usage_chunk)
        await self._end(request, send, b"data: [DONE]\n\n" if self.send_done else b"")

    async def _end(self, request: FakeRequest, send: Send, data: bytes) -> None:
        # Hypercorn reports http.disconnect as soon as the body is complete, possibly
        # before this send returns: mark the request complete first.
        request.completed = True
        await self._write(send, data, more_body=False)

    async def _event(self, send: Send, obj: dict[str, Any]) -> None:
        data = b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"
        if self.split_utf8:
            cut = next((i for i, byte in enumerate(data) if byte >= 0xC0), len(data) // 2) + 1
            await self._write(send, data[:cut])
            data = data[cut:]
        await self._write(send, data)

    @staticmethod
    async def _write(send: Send, data: bytes, *, more_body: bool = True) -> None:
        await send({"type": "http.response.body", "body": data, "more_body": more_body})

    async def _send_error(self, send: Send, status: int, message: str) -> None:
        error = {"message": message, "type": "invalid_request_error", "code": str(status)}
        await send_json(send, status, {"error": error})
