"""`ChatRelay`: the ASGI endpoints that relay an upstream's answers to browsers."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

import trio

from ..protocol import UI_MESSAGE_STREAM_HEADERS, Event, ui_messages_to_openai
from ..sse import EventStream, Route, Router
from ..sse._asgi import ASGIApp, Receive, Scope, Send, handle_lifespan
from ..sse._feeds import FeedFactory
from ._detach import DetachedGeneration, DetachedGenerations, GenerationsBusy, publish_shielded
from ._errors import UpstreamError
from ._relay import DEFAULT_ERROR_MESSAGE, AnswerFeed, Formatter, RelayFormat, relay_answer
from ._requests import (
    InvalidChatRequest,
    collect_completion,
    openai_request,
    read_json_body,
    send_json,
    send_json_error,
    valid_answer_id,
)
from ._stream import ChatUpstream, GenerationResult

__all__ = ["ANSWER_ID_HEADER", "ChatRelay", "Policy"]

logger = logging.getLogger("trio_stream.llm")


@asynccontextmanager
async def _opened(feed: AnswerFeed) -> AsyncIterator[AnswerFeed]:
    """``feed`` as the context manager a :class:`FeedFactory` opens (it holds nothing)."""
    await trio.lowlevel.checkpoint()
    yield feed


Policy = Literal["cancel_on_disconnect", "detach"]

ANSWER_ID_HEADER = "x-trio-stream-answer-id"
"""Response header naming the answer: the id to resume (``/api/chat/{id}/stream``) or stop."""


class ChatRelay:
    """Relay answers from ``upstream`` (an :class:`OpenAIUpstream`, a
    :class:`LocalTokenSource`...) to HTTP clients, as ASGI endpoints.

    * :meth:`chat_completions` — ``POST /v1/chat/completions``: OpenAI-compatible;
      ``stream: true`` gets ``chat.completion.chunk`` events and ``data:
      [DONE]``, ``stream: false`` one ``chat.completion`` object;
    * :meth:`models` — ``GET /v1/models``: the upstream's model list;
    * :meth:`ui_chat` — ``POST /api/chat``: the AI SDK UI message stream (v1)
      that ``useChat`` / ``DefaultChatTransport`` consume unchanged;
    * :meth:`resume` — ``GET /api/chat/{id}/stream`` and :meth:`stop` — ``POST
      /api/chat/{id}/stop``: for the ``detach`` policy.

    :meth:`routes` / :meth:`app` mount them. Streams use :class:`EventStream`
    (keepalives, ``send_timeout``, disconnect watch; ``stream_options`` go to
    it).

    ``policy="cancel_on_disconnect"`` (default): a client that goes away
    cancels its answer at once, and the upstream connection is closed (the
    model stops generating, which stops the cost). ``policy="detach"``
    (needs ``generations``, a running :class:`DetachedGenerations`): answers
    keep generating into a Hub topic; the response carries the answer id in
    the ``x-trio-stream-answer-id`` header (for ``/api/chat`` it is the AI SDK
    chat ``id`` when valid), and a client resumes with ``GET
    {chat_path}/{id}/stream`` and its ``Last-Event-ID`` (every event carries
    its id), or stops the answer with ``POST {chat_path}/{id}/stop``.

    Upstream failures reach clients only as ``error_message`` (a 502 before
    the stream starts, an error object / ``error`` part inside it); the
    details are logged. Every answer's :class:`GenerationResult` (tokens
    delivered, upstream usage, status, timings) goes to ``on_result`` when it
    ends. ``coalesce_window`` (seconds, default 0) merges tokens arriving that
    close together into one event; queued tokens are always merged.
    """

    def __init__(
        self,
        upstream: ChatUpstream,
        *,
        policy: Policy = "cancel_on_disconnect",
        generations: DetachedGenerations | None = None,
        model: str | None = None,
        coalesce_window: float = 0.0,
        error_message: str = DEFAULT_ERROR_MESSAGE,
        on_result: Callable[[GenerationResult], object] | None = None,
        max_body_size: int = 1024 * 1024,
        **stream_options: Any,
    ) -> None:
        if policy not in ("cancel_on_disconnect", "detach"):
            raise ValueError(f"unknown policy {policy!r}")
        if policy == "detach" and generations is None:
            raise ValueError("policy='detach' needs a DetachedGenerations")
        if coalesce_window < 0 or max_body_size < 1:
            raise ValueError("need coalesce_window >= 0 and max_body_size >= 1")
        self.upstream = upstream
        self.policy = policy
        self.generations = generations
        self.model = model
        self.coalesce_window = coalesce_window
        self.error_message = error_message
        self.on_result = on_result
        self.max_body_size = max_body_size
        self.stream_options = stream_options

    # -- mounting -------------------------------------------------------------

    def routes(self, *, openai_prefix: str = "/v1", chat_path: str = "/api/chat") -> list[Route]:
        """The endpoints as :class:`Route` values, for a :class:`Router`."""
        return [
            Route(f"{openai_prefix}/chat/completions", self.chat_completions, methods=["POST"]),
            Route(f"{openai_prefix}/models", self.models),
            Route(chat_path, self.ui_chat, methods=["POST"]),
            Route(f"{chat_path}/{{id}}/stream", self.resume),
            Route(f"{chat_path}/{{id}}/stop", self.stop, methods=["POST"]),
        ]

    def app(self, **route_options: str) -> ASGIApp:
        """A :class:`Router` serving :meth:`routes` (404 / 405 elsewhere)."""
        return Router(self.routes(**route_options))

    # -- endpoints ----------------------------------------------------------------

    async def chat_completions(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /v1/chat/completions`` (OpenAI-compatible, streaming or not)."""
        parsed = await self._read_request(scope, receive, send, self._openai_request)
        if parsed is None:
            return
        body, request = parsed
        answer_id = uuid.uuid4().hex
        if not body.get("stream"):
            await self._complete(scope, receive, send, request, answer_id)
        else:
            await self._answer(scope, receive, send, request, answer_id, RelayFormat.OPENAI)

    async def ui_chat(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /api/chat``: answer as an AI SDK UI message stream (v1)."""
        parsed = await self._read_request(scope, receive, send, self._ui_request)
        if parsed is None:
            return
        body, request = parsed
        answer_id = valid_answer_id(body.get("id")) or uuid.uuid4().hex
        await self._answer(scope, receive, send, request, answer_id, RelayFormat.AI_SDK)

    async def _read_request(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        build: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The JSON body and the upstream request ``build`` makes of it; None once answered.

        A bad body (``InvalidChatRequest`` from reading or from ``build``) gets
        its 4xx here; ``None`` also when the client left before sending it,
        and for the server's lifespan messages (acknowledged here).
        """
        if scope["type"] == "lifespan":
            await handle_lifespan(receive, send)
            return None
        try:
            body = await read_json_body(receive, self.max_body_size)
            if body is None:
                return None
            return body, build(body)
        except InvalidChatRequest as exc:
            await send_json_error(scope, send, exc.status, str(exc))
            return None

    def _openai_request(self, body: dict[str, Any]) -> dict[str, Any]:
        return openai_request(body, self.model)

    def _ui_request(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            messages = ui_messages_to_openai(body.get("messages"))
        except ValueError:
            raise InvalidChatRequest("'messages' must be a list of UI messages") from None
        request: dict[str, Any] = {"messages": messages}
        model = body.get("model") if isinstance(body.get("model"), str) else self.model
        if model is not None:
            request["model"] = model
        return request

    async def models(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET /v1/models``: the upstream's models (502 if it cannot be asked)."""
        if scope["type"] == "lifespan":
            await handle_lifespan(receive, send)
            return
        try:
            data = await self.upstream.list_models()
        except UpstreamError as exc:
            logger.warning("listing the upstream's models failed: %s", exc)
            await send_json_error(scope, send, 502, self.error_message)
            return
        await send_json(send, 200, {"object": "list", "data": data})

    async def resume(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET {chat_path}/{id}/stream``: the rest of a detached answer after the client's
        ``Last-Event-ID`` (the whole answer without one); 204 when there is no such answer."""
        if scope["type"] == "lifespan":
            await handle_lifespan(receive, send)
            return
        generation = self._generation(scope)
        if generation is None:
            await trio.lowlevel.checkpoint()
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        await self._follow(scope, receive, send, generation, resuming=True)

    async def stop(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``POST {chat_path}/{id}/stop``: stop a detached answer (204), 404 if not running."""
        if scope["type"] == "lifespan":
            await handle_lifespan(receive, send)
            return
        generation = self._generation(scope)
        if generation is None or not self._stop(generation):
            await send_json_error(scope, send, 404, "no such running answer")
            return
        logger.info("answer %s stopped by its client", generation.id)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    # -- internals ------------------------------------------------------------------

    def _generation(self, scope: Scope) -> DetachedGeneration | None:
        answer_id = valid_answer_id(scope.get("path_params", {}).get("id"))
        if self.generations is None or answer_id is None:
            return None
        return self.generations.get(answer_id)

    def _stop(self, generation: DetachedGeneration) -> bool:
        return self.generations is not None and self.generations.stop(generation.id)

    def _report(self, result: GenerationResult) -> None:
        logger.info("answer %s", result.as_dict())
        if self.on_result is not None:
            try:
                self.on_result(result)
            except Exception:
                logger.exception("on_result callback failed")

    def _event_stream(self, producer: Any, fmt: RelayFormat, answer_id: str) -> EventStream:
        headers = [(ANSWER_ID_HEADER, answer_id)]
        if fmt is RelayFormat.AI_SDK:
            headers.extend(UI_MESSAGE_STREAM_HEADERS)
        formatter = Formatter(fmt, answer_id, "unknown")
        error_event = formatter.failure(self.error_message)[0]
        return EventStream(
            producer, headers=headers, error_event=error_event, **self.stream_options
        )

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        request: dict[str, Any],
        answer_id: str,
        fmt: RelayFormat,
    ) -> None:
        if self.policy == "detach":
            await self._detached_answer(scope, receive, send, request, answer_id, fmt)
            return
        result = GenerationResult(id=answer_id)
        try:
            async with self.upstream.open_chat_stream(request, result=result) as stream:
                feed = AnswerFeed(
                    stream,
                    Formatter(fmt, answer_id, result.model or "unknown"),
                    coalesce_window=self.coalesce_window,
                    error_message=self.error_message,
                )
                source = FeedFactory(lambda last_event_id: _opened(feed))
                await self._event_stream(source, fmt, answer_id)(scope, receive, send)
        except UpstreamError as exc:  # the stream could not even start
            logger.warning("answer %s: upstream failed before streaming: %s", answer_id, exc)
            await send_json_error(scope, send, 502, self.error_message)
        finally:
            self._report(result)

    async def _detached_answer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        request: dict[str, Any],
        answer_id: str,
        fmt: RelayFormat,
    ) -> None:
        assert self.generations is not None
        result = GenerationResult(id=answer_id)

        async def generate(generation: DetachedGeneration, publish: Any) -> None:
            formatter = Formatter(fmt, answer_id, self.model or "unknown")
            ended = False
            try:
                async with self.upstream.open_chat_stream(request, result=result) as stream:
                    formatter = Formatter(fmt, answer_id, result.model or "unknown")
                    await relay_answer(
                        stream,
                        formatter,
                        publish,
                        coalesce_window=self.coalesce_window,
                        error_message=self.error_message,
                    )
                    ended = True
            except UpstreamError as exc:
                logger.warning("answer %s: upstream failed before streaming: %s", answer_id, exc)
                await publish_shielded(publish, formatter.failure(self.error_message))
                ended = True
            finally:
                if not ended:  # stopped, or the server is shutting down
                    await publish_shielded(  # noqa: ASYNC102  it shields, with a deadline
                        publish, formatter.stopped()
                    )
                self._report(result)

        try:
            generation = await self.generations.start(answer_id, result, generate, label=fmt.value)
        except GenerationsBusy:
            await send_json_error(scope, send, 503, "too many answers in progress")
            return
        await self._follow(scope, receive, send, generation, resuming=False)

    async def _follow(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        generation: DetachedGeneration,
        *,
        resuming: bool,
    ) -> None:
        assert self.generations is not None
        generations = self.generations
        fmt = RelayFormat(generation.label)

        async def producer(channel: trio.MemorySendChannel[Event]) -> None:
            last_event_id = events.last_event_id if resuming else None
            await generations.follow(generation, last_event_id, channel.send)

        events = self._event_stream(producer, fmt, generation.id)
        await events(scope, receive, send)

    async def _complete(
        self, scope: Scope, receive: Receive, send: Send, request: dict[str, Any], answer_id: str
    ) -> None:
        result = GenerationResult(id=answer_id)
        completion: dict[str, Any] | None = None

        async def answer(cancel_scope: trio.CancelScope) -> None:  # noqa: ASYNC910  opening checkpoints
            nonlocal completion
            try:
                async with self.upstream.open_chat_stream(request, result=result) as stream:
                    completion = await collect_completion(stream, result)
            except UpstreamError as exc:
                logger.warning("answer %s failed: %s", answer_id, exc)
            cancel_scope.cancel()

        async def watch_disconnect(cancel_scope: trio.CancelScope) -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            cancel_scope.cancel()  # the client left: stop the upstream at once

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch_disconnect, nursery.cancel_scope)
                nursery.start_soon(answer, nursery.cancel_scope)
        finally:
            self._report(result)
        if completion is not None:
            await send_json(
                send, 200, completion, [(ANSWER_ID_HEADER.encode(), answer_id.encode())]
            )
        elif result.status != "cancelled":
            await send_json_error(scope, send, 502, self.error_message)
