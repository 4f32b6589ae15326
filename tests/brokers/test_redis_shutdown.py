"""A publish still in flight while the RedisBroker stops (the demo's presence on the way out)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from tests.brokers._hubs import broker_of, redis_hub
from tests.brokers._redis_server import RedisServer
from trio_stream.brokers import RedisBroker
from trio_stream.core import Hub
from trio_stream.protocol import Event, TrioStreamError

pytestmark = pytest.mark.needs_redis

DEADLINE = 15  # safety bound only


async def test_a_publish_cut_off_by_shutdown_fails_with_a_broker_error(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    outcome: list[BaseException] = []
    brokers: list[RedisBroker] = []

    async def publish_on_the_way_out(hub: Hub) -> None:
        # Shielded (and bounded), as a WebSocket room announces "left" while the server stops.
        with trio.move_on_after(DEADLINE) as scope:
            scope.shield = True
            try:
                await hub.publish("room", Event("left"))
            except Exception as exc:
                outcome.append(exc)
            await trio.lowlevel.checkpoint()

    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as outside, redis_hub(redis_server.url) as hub:
            brokers.append(broker_of(hub))
            await hub.publish("room", Event("joined"))  # the script is loaded
            # A tail that just lost its last watcher: stopping it keeps the broker's
            # nursery open a few scheduling rounds after it stops taking new tasks.
            async with hub.subscribe("room"):
                pass
            # Redis holds writes: the next publish waits for its answer...
            redis_server.command("CLIENT", "PAUSE", str(DEADLINE * 1000), "WRITE")
            # The hub stopping under this task is the point of the test:
            outside.start_soon(publish_on_the_way_out, hub)  # noqa: ASYNC111
            await trio.testing.wait_all_tasks_blocked()
            # ...and the broker stopped under it.
        redis_server.command("CLIENT", "UNPAUSE")

    (error,) = outcome
    assert isinstance(error, TrioStreamError), repr(error)
    assert brokers[0].statistics().outages == 0  # shutting down is not an outage
    # Ours only: coredis may log a connection attempt cancelled by the shutdown.
    ours = [r for r in caplog.records if r.name.startswith("trio_stream")]
    assert not [r for r in ours if r.levelname in ("WARNING", "ERROR")]
