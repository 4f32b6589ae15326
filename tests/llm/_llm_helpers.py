"""Helpers for the LLM tests: a fake upstream and a relay in front of it, on real sockets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import trio

from trio_stream.core import Hub
from trio_stream.llm import (
    ChatRelay,
    ChatUpstream,
    DetachedGenerations,
    GenerationResult,
    OpenAIUpstream,
)
from trio_stream.protocol import DONE, Event
from trio_stream.testing import FakeOpenAI, RunningServer, open_test_server

USER_MESSAGE = {"role": "user", "content": "hi there"}
UI_MESSAGE = {"id": "m1", "role": "user", "parts": [{"type": "text", "text": "hi there"}]}


@dataclass
class RelaySetup:
    """A running relay (``url``) in front of ``upstream``; results land in ``results``."""

    url: str
    relay: ChatRelay
    server: RunningServer
    results: list[GenerationResult]
    client: httpx.AsyncClient


@asynccontextmanager
async def open_relay(
    upstream: ChatUpstream,
    *,
    hub: Hub | None = None,
    max_active: int = 64,
    **relay_options: Any,
) -> AsyncIterator[RelaySetup]:
    """Serve a :class:`ChatRelay` for ``upstream`` (detach policy when ``hub`` is given)."""
    results: list[GenerationResult] = []
    async with trio.open_nursery() as nursery:
        if hub is not None:
            generations = DetachedGenerations(hub, retention=60.0, max_active=max_active)
            await nursery.start(generations.run)
            relay_options.update(policy="detach", generations=generations)
        relay = ChatRelay(upstream, on_result=results.append, **relay_options)
        async with (
            open_test_server(relay.app()) as server,
            httpx.AsyncClient(base_url=server.url, timeout=10.0) as client,
        ):
            yield RelaySetup(server.url, relay, server, results, client)
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def open_fake_relay(
    fake: FakeOpenAI, *, hub: Hub | None = None, max_active: int = 64, **relay_options: Any
) -> AsyncIterator[RelaySetup]:
    """A relay whose upstream is ``fake`` served on its own port."""
    async with (
        open_test_server(fake) as upstream_server,
        OpenAIUpstream(upstream_server.url + "/v1") as upstream,
        open_relay(upstream, hub=hub, max_active=max_active, **relay_options) as setup,
    ):
        yield setup


def data_of(events: list[Event]) -> list[Any]:
    """The JSON data of each event (``[DONE]`` kept as the string)."""
    return [event.data if event.data == DONE else json.loads(event.data) for event in events]


def ui_text(parts: list[Any]) -> str:
    """The text of an AI SDK part sequence."""
    return "".join(
        p["delta"] for p in parts if isinstance(p, dict) and p.get("type") == "text-delta"
    )


def chunk_text(chunks: list[Any]) -> str:
    """The text of a list of OpenAI chunks."""
    return "".join(
        choice["delta"].get("content") or ""
        for chunk in chunks
        if isinstance(chunk, dict)
        for choice in chunk.get("choices", [])
    )
