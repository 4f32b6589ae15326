"""Lesson: in a fan-out, the slow subscriber pays - never the publisher or the others.

Every subscriber of a Hub topic has its own bounded queue and an overflow
policy saying what happens when that queue is full. Here one subscriber
reads the first event, then freezes (a background browser tab) while ten
more are published into a queue of four; a fast subscriber reads everything.
Each policy is run in turn and its ``statistics()`` printed: nothing is ever
silently lost, and only ``BLOCK`` lets a reader slow the publisher down.

Run: python examples/fanout_overflow.py   (in-process: no network, under a second)
"""

from __future__ import annotations

import trio

from trio_stream import Event, Hub, Overflow, SubscriberDisconnected, Subscription

CAPACITY = 4  # the slow subscriber's queue
BURST = 10  # events published while it is frozen


async def read_slowly(subscription: Subscription, into: list[str], count: int) -> None:
    # A reader that takes 10 ms per event (only used for BLOCK).
    async for event in subscription:
        into.append(event.data)
        count -= 1
        if count == 0:
            return
        await trio.sleep(0.01)


async def run(policy: Overflow) -> None:
    hub = Hub()
    got: list[str] = []
    async with (
        hub.subscribe("prices") as fast,  # defaults: capacity 256, DISCONNECT
        hub.subscribe("prices", capacity=CAPACITY, overflow=policy) as slow,
    ):
        await hub.publish("prices", Event("0"))
        got.append((await slow.receive()).data)  # it saw "0", then freezes
        async with trio.open_nursery() as nursery:
            if policy is Overflow.BLOCK:
                # Under BLOCK a full queue makes publish() wait: run the
                # reader concurrently, or the publisher would wait forever.
                nursery.start_soon(read_slowly, slow, got, BURST)
            for n in range(1, BURST + 1):
                await hub.publish("prices", Event(str(n)))
            # How far the slow reader had got when the publisher finished: it
            # set the publisher's pace only if it had to read to make room.
            read_meanwhile = len(got)
        stats = slow.statistics()  # the publisher is done; the frozen reader wakes up
        try:
            if policy is not Overflow.BLOCK:  # (under BLOCK it has read everything)
                got += [event.data for event in await slow.receive_batch()]
        except SubscriberDisconnected:
            # Detached for being too slow: its queue was freed. Resume from
            # history with the last id it saw - what an SSE client does by
            # reconnecting with Last-Event-ID.
            assert slow.last_event_id is not None
            async with hub.subscribe("prices", last_event_id=slow.last_event_id) as again:
                assert again.recovered
                got += [event.data for event in await again.receive_batch()]
        fast_got = len(await fast.receive_batch())
    hub_stats = hub.statistics()
    print(f"{policy.name}: publishing ended when the slow reader had read {read_meanwhile}")
    print(f"  slow got:   {','.join(got)}")
    print(f"  statistics: {stats}")
    print(f"  fast got {fast_got}; hub: {hub_stats.dropped} dropped, {hub_stats.disconnected} cut")


async def main() -> None:
    for policy in (
        Overflow.DROP_OLDEST,
        Overflow.DROP_NEWEST,
        Overflow.DISCONNECT,
        Overflow.BLOCK,
    ):
        await run(policy)
    print("fan-out ok: only BLOCK slowed the publisher; DISCONNECT lost nothing (from history)")


if __name__ == "__main__":
    trio.run(main)
