"""Helpers shared by the Redis broker tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from trio_stream.brokers import RedisBroker
from trio_stream.core import Hub, Subscription, open_hub
from trio_stream.protocol import Backoff, Event


def fast_broker(url: str, **options: Any) -> RedisBroker:
    """A RedisBroker that notices recovery quickly (tests use real time)."""
    options.setdefault("reconnect_backoff", Backoff(0.01, 0.1))
    options.setdefault("tail_block", 0.5)
    return RedisBroker(url, **options)


@asynccontextmanager
async def redis_hub(url: str, **options: Any) -> AsyncIterator[Hub]:
    """A Hub on a :func:`fast_broker`, running for the block."""
    async with open_hub(fast_broker(url, **options)) as hub:
        yield hub


def broker_of(hub: Hub) -> RedisBroker:
    broker = hub.broker
    assert isinstance(broker, RedisBroker)
    return broker


async def receive_n(subscription: Subscription, count: int) -> list[Event]:
    """Exactly ``count`` events (bounded by the caller's deadline)."""
    events: list[Event] = []
    await trio.lowlevel.checkpoint()
    while len(events) < count:
        batch = await subscription.receive_batch(count - len(events))
        assert batch, f"subscription ended after {len(events)} of {count} events"
        events.extend(batch)
    return events
