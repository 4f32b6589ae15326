"""Hub.disconnect_subscribers: a broker ends a topic's local subscribers ("reconnect")."""

from __future__ import annotations

import logging

import pytest

from trio_stream.core import Hub, Overflow, SubscriberDisconnected
from trio_stream.protocol import Event


async def test_it_ends_every_subscriber_of_the_topic_with_the_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "trio_stream.core")
    hub = Hub()
    async with (
        hub.subscribe("t") as first,
        hub.subscribe("t", overflow=Overflow.BLOCK) as second,
        hub.subscribe("other") as bystander,
    ):
        await hub.publish("t", Event("queued"))
        assert hub.disconnect_subscribers("t", "the backend is gone") == 2
        for sub in (first, second):
            with pytest.raises(SubscriberDisconnected) as caught:
                await sub.receive()  # queued events were released
            assert "the backend is gone" in str(caught.value)
            assert "behind" not in str(caught.value)
            assert sub.statistics().disconnected
        event = await hub.publish("other", Event("still here"))
        assert await bystander.receive() == event
        stats = hub.statistics()
        assert stats.disconnected == 2
        assert stats.subscribers == 1
    assert hub.statistics().subscribers == 0
    assert "disconnected 2 subscriber(s): the backend is gone" in caplog.text
    assert "events behind" not in caplog.text


def test_a_topic_without_subscribers_ends_none() -> None:
    hub = Hub()
    assert hub.disconnect_subscribers("nobody", "why") == 0
    assert hub.statistics().disconnected == 0


async def test_an_overflow_still_says_how_far_behind() -> None:
    hub = Hub()
    async with hub.subscribe("t", capacity=1) as sub:
        await hub.publish("t", Event("1"))
        await hub.publish("t", Event("2"))
        with pytest.raises(SubscriberDisconnected, match="more than 1 items behind"):
            await sub.receive()
