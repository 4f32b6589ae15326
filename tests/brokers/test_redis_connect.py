"""Connecting RedisBroker: passwords in the URL, TLS (rediss://), refusals that must be loud."""

from __future__ import annotations

import ssl

import pytest
import trio
import trustme

from tests.brokers._hubs import broker_of, fast_broker, redis_hub
from tests.brokers._redis_server import RedisServer
from trio_stream.brokers import BrokerError, BrokerUnavailableError
from trio_stream.core import Hub, open_hub
from trio_stream.protocol import Event

pytestmark = pytest.mark.needs_redis

DEADLINE = 15  # safety bound only


async def round_trip(hub: Hub) -> None:
    async with hub.subscribe("t") as sub:
        event = await hub.publish("t", Event("hello"))
        assert await sub.receive() == event


async def test_password_from_the_url(auth_redis_server: RedisServer) -> None:
    with trio.fail_after(DEADLINE):
        async with redis_hub(auth_redis_server.url) as hub:
            await round_trip(hub)
        # Percent-encoded credentials are decoded ("%33" is "3").
        encoded = auth_redis_server.url.replace("s3cret", "s%33cret")
        async with redis_hub(encoded) as hub:
            await round_trip(hub)


@pytest.mark.parametrize("credentials", [":wrong@", ""])
async def test_a_refused_password_fails_at_start(
    auth_redis_server: RedisServer, credentials: str
) -> None:
    url = f"redis://{credentials}127.0.0.1:{auth_redis_server.port}/0"
    with trio.fail_after(DEADLINE), pytest.raises(BrokerError) as caught:
        async with redis_hub(url):
            pass  # pragma: no cover
    assert not isinstance(caught.value, BrokerUnavailableError)
    assert "wrong" not in str(caught.value)


async def test_tls_with_a_trusted_ca(tls_redis_server: RedisServer, redis_ca: trustme.CA) -> None:
    context = ssl.create_default_context()
    redis_ca.configure_trust(context)
    assert tls_redis_server.url.startswith("rediss://")
    with trio.fail_after(DEADLINE):
        async with redis_hub(tls_redis_server.url, ssl_context=context) as hub:
            await round_trip(hub)
            assert broker_of(hub).available


async def test_tls_verifies_the_server_by_default(tls_redis_server: RedisServer) -> None:
    # The server's certificate comes from a CA the system does not trust.
    with trio.fail_after(DEADLINE), pytest.raises(BrokerError, match="certificate"):
        async with redis_hub(tls_redis_server.url):
            pass  # pragma: no cover


async def test_a_broker_runs_once_and_binds_one_hub(redis_server: RedisServer) -> None:
    broker = fast_broker(redis_server.url)
    with trio.fail_after(DEADLINE):
        async with open_hub(broker) as hub:
            with pytest.raises(RuntimeError, match="already bound"):
                Hub(broker)
            with pytest.raises(RuntimeError, match="already running"):
                await broker.run()
            await broker.wait_available()
            await round_trip(hub)
    assert not broker.available


async def test_unix_socket_url(unix_redis_server: RedisServer) -> None:
    assert unix_redis_server.url.startswith("unix://")
    with trio.fail_after(DEADLINE):
        async with redis_hub(unix_redis_server.url) as hub:
            await round_trip(hub)
