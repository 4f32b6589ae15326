"""The LLM endpoints of the demo: :class:`ChatRelay` behind the token check, counted."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ..llm import ChatRelay, ChatUpstream, GenerationResult
from ..sse import Route
from ..sse._asgi import ASGIApp, Receive, Scope, Send
from ._http import DemoRequestError, bearer_allowed

__all__ = ["AnswerStatistics", "Answers"]


@dataclass(frozen=True, slots=True)
class AnswerStatistics:
    """A snapshot of the LLM endpoints: requests ``in_flight`` now, finished answers by
    status (``finished``, ``cancelled``, ``failed``), tokens delivered to clients."""

    in_flight: int
    answers: Mapping[str, int]
    tokens_delivered: int


class Answers:
    """``POST /v1/chat/completions``, ``GET /v1/models`` and ``POST /api/chat`` (plus the
    relay's resume/stop routes) from a :class:`ChatRelay` over ``upstream``.

    The relay uses its default policy: a client that goes away (the page's
    Stop button aborts its fetch) cancels the answer and closes the upstream
    connection at once. With a ``token``, every POST needs ``Authorization:
    Bearer <token>`` (401 otherwise): answers cost money with a real
    upstream. ``model`` names the upstream model when a request has none.
    """

    def __init__(
        self,
        upstream: ChatUpstream,
        *,
        token: str | None = None,
        model: str | None = None,
        max_body_size: int = 1024 * 1024,
        keepalive_interval: float = 15.0,
    ) -> None:
        self.token = token
        self.relay = ChatRelay(
            upstream,
            model=model,
            on_result=self._count,
            max_body_size=max_body_size,
            keepalive_interval=keepalive_interval,
        )
        self._in_flight = 0
        self._answers: Counter[str] = Counter()
        self._tokens = 0

    def routes(self) -> list[Route]:
        """The relay's routes, each behind the token check (POST) and the counters."""
        return [
            Route(route.path, self._guarded(route.app), methods=route.methods)
            for route in self.relay.routes()
        ]

    def _guarded(self, app: ASGIApp) -> ASGIApp:
        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            if scope.get("method") == "POST" and not bearer_allowed(scope, self.token):
                await DemoRequestError(401, "a valid bearer token is required").respond(
                    scope, send
                )
                return
            self._in_flight += 1
            try:
                await app(scope, receive, send)
            finally:
                self._in_flight -= 1

        return guarded

    def _count(self, result: GenerationResult) -> None:
        self._answers[result.status] += 1
        self._tokens += result.delivered_tokens

    def statistics(self) -> AnswerStatistics:
        """An :class:`AnswerStatistics` snapshot (no checkpoint)."""
        return AnswerStatistics(
            in_flight=self._in_flight,
            answers=MappingProxyType(dict(self._answers)),
            tokens_delivered=self._tokens,
        )
