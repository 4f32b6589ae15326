"""Fixtures for the WebSocket tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.websocket._ws_helpers import RawClient

OpenRaw = Callable[[int], Awaitable[RawClient]]


@pytest.fixture
async def open_raw() -> AsyncIterator[OpenRaw]:
    """Open bare TCP clients to 127.0.0.1:port; all are closed after the test."""
    clients: list[RawClient] = []

    async def open_(port: int) -> RawClient:
        client = await RawClient.open(port)
        clients.append(client)
        return client

    yield open_
    for client in clients:
        await client.aclose()
