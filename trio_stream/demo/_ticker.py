"""The demo's ticker: a random walk published on a topic at a steady pace."""

from __future__ import annotations

import itertools
import logging
import random
import time

import trio

from ..core import Hub, HubClosedError
from ..protocol import Event, TrioStreamError

__all__ = ["TICKER_EVENT", "TICKER_TOPIC", "run_ticker"]

logger = logging.getLogger("trio_stream.demo")

TICKER_TOPIC = "ticker"
"""The topic the demo's ticker publishes on."""

TICKER_EVENT = "tick"
"""The SSE event type of ticker events (``addEventListener("tick", ...)`` in a page)."""


async def run_ticker(  # noqa: ASYNC114  startable; flake8-async's list is the project's config
    hub: Hub,
    *,
    interval: float = 1.0,
    topic: str = TICKER_TOPIC,
    start: float = 100.0,
    seed: int | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Publish a ``tick`` event on ``topic`` every ``interval`` seconds until cancelled.

    Each event's data is JSON ``{"seq": n, "value": v, "time": t}``: ``seq``
    counts from 1 (a reader that sees consecutive ``seq`` values missed
    nothing), ``value`` is a random walk from ``start`` (reproducible with
    ``seed``), ``time`` the wall-clock time in seconds. Pacing is drift-free
    (deadlines, not sleeps between publishes), so a slow publish does not
    shift later ticks; ticks missed while publishing stalled are skipped, not
    made up in a burst. While the broker is unavailable (Redis down), ticks are
    skipped (their ``seq`` too: readers see the gap) and a warning is logged.
    Startable (``await nursery.start(run_ticker, hub)``); returns quietly when
    the Hub closes. ``publish`` never waits on the ticker's readers (their
    queues overflow under their own policy).
    """
    if not interval > 0:
        raise ValueError("interval must be > 0")
    await trio.lowlevel.checkpoint()
    rng = random.Random(seed)
    value = start
    deadline = trio.current_time()
    failing = False
    task_status.started()
    for seq in itertools.count(1):
        value = max(1.0, value * (1.0 + rng.gauss(0.0, 0.004)))
        data = {"seq": seq, "value": round(value, 2), "time": round(time.time(), 3)}
        try:
            await hub.publish(topic, Event.json(data, event=TICKER_EVENT))
            failing = False
        except HubClosedError:
            logger.info("ticker stopped: the hub closed")
            return
        except TrioStreamError as exc:  # the broker is down: skip ticks until it is back
            if not failing:
                logger.warning("ticker: publishing failed (%s); skipping ticks", exc)
            failing = True
        # A tick that fell behind (a stalled broker) is not made up with a burst.
        deadline = max(deadline + interval, trio.current_time())
        await trio.sleep_until(deadline)
