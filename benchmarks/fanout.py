"""Fan-out throughput: the Hub against one awaited memory channel per subscriber.

One topic, N subscribers (default 1,000), each a task taking batches; one
publisher. The naive design gives every subscriber a trio memory channel of
the same capacity and the publisher awaits ``send`` on each, in turn (so one
slow subscriber would stall everyone: the problem the Hub solves). Both
designs deliver every event to every subscriber; the figure is events
delivered per second (events x subscribers / wall time), median of several
runs.

Run: ``python -m benchmarks.fanout [--subscribers N] [--events E] [--repeats R]``
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio
import trio.testing

from trio_stream.core import DEFAULT_CAPACITY, Hub
from trio_stream.protocol import Event

Design = Callable[[int, int, int], Awaitable[tuple[float, float]]]


def _payloads(events: int) -> list[Event]:
    return [Event.json({"n": n, "price": 100.0 + n % 7}, event="tick") for n in range(events)]


async def _hub_design(subscribers: int, events: int, capacity: int) -> tuple[float, float]:
    hub = Hub()
    payloads = _payloads(events)
    received = [0] * subscribers
    ready = trio.Event()
    subscribed = 0

    async def consume(index: int) -> None:
        nonlocal subscribed
        async with hub.subscribe("bench", capacity=capacity) as sub:
            subscribed += 1
            if subscribed == subscribers:
                ready.set()
            while batch := await sub.receive_batch():
                received[index] += len(batch)

    async with trio.open_nursery() as nursery:
        for index in range(subscribers):
            nursery.start_soon(consume, index)
        await ready.wait()
        started, cpu = time.perf_counter(), time.process_time()
        for event in payloads:
            await hub.publish("bench", event)
        hub.close()
    elapsed = time.perf_counter() - started, time.process_time() - cpu
    lost = hub.statistics().disconnected
    if lost or sum(received) != subscribers * events:
        raise RuntimeError(f"hub lost events: {lost} subscribers disconnected")
    return elapsed


async def _naive_design(subscribers: int, events: int, capacity: int) -> tuple[float, float]:
    payloads = _payloads(events)
    received = [0] * subscribers
    senders = []

    async def consume(index: int, receiver: trio.MemoryReceiveChannel[Event]) -> None:
        with receiver:
            async for _ in receiver:
                count = 1
                # Drain what is queued, as receive_batch does.
                while True:
                    try:
                        receiver.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                    count += 1
                received[index] += count

    async with trio.open_nursery() as nursery:
        for index in range(subscribers):
            sender, receiver = trio.open_memory_channel[Event](capacity)
            senders.append(sender)
            nursery.start_soon(consume, index, receiver)
        await trio.testing.wait_all_tasks_blocked()
        started, cpu = time.perf_counter(), time.process_time()
        for event in payloads:
            event.encode()  # encode once, as the Hub does
            for sender in senders:
                await sender.send(event)
        for sender in senders:
            sender.close()
    elapsed = time.perf_counter() - started, time.process_time() - cpu
    if sum(received) != subscribers * events:
        raise RuntimeError("naive design lost events")
    return elapsed


def _measure(design: Design, subscribers: int, events: int, capacity: int) -> tuple[float, float]:
    """Events delivered per second of wall-clock time and of CPU time, for one run."""
    gc.collect()
    wall, cpu = trio.run(design, subscribers, events, capacity)
    delivered = subscribers * events
    return delivered / wall, delivered / cpu


def run(
    *,
    subscribers: int = 1000,
    events: int = 300,
    capacity: int = DEFAULT_CAPACITY,
    repeats: int = 5,
) -> dict[str, Any]:
    """Measure both designs; return medians (events delivered per second) and the ratio.

    Rates are given per second of wall-clock time and per second of CPU time
    (the latter is steadier on a machine shared with other work). ``ratio``
    is the Hub's wall-clock median over the naive one's.
    """
    runs: dict[str, list[tuple[float, float]]] = {"hub": [], "naive": []}
    for _ in range(repeats):
        # Interleaved, so that load from other processes hits both alike.
        runs["hub"].append(_measure(_hub_design, subscribers, events, capacity))
        runs["naive"].append(_measure(_naive_design, subscribers, events, capacity))

    def median(design: str, column: int) -> float:
        return statistics.median(run[column] for run in runs[design])

    return {
        "subscribers": subscribers,
        "events": events,
        "capacity": capacity,
        "repeats": repeats,
        "hub_events_per_s": median("hub", 0),
        "naive_events_per_s": median("naive", 0),
        "hub_events_per_cpu_s": median("hub", 1),
        "naive_events_per_cpu_s": median("naive", 1),
        "ratio": median("hub", 0) / median("naive", 0),
        "cpu_ratio": median("hub", 1) / median("naive", 1),
        "runs": runs,
    }


def to_markdown(result: dict[str, Any]) -> str:
    """Render a :func:`run` result as a markdown table."""
    lines = [
        f"Fan-out of 1 topic to {result['subscribers']:,} subscribers, "
        f"{result['events']:,} events, capacity {result['capacity']}, "
        f"median of {result['repeats']} runs",
        "",
        "| design | events delivered / s | per CPU-second | relative (wall / CPU) |",
        "|---|---:|---:|---:|",
        f"| trio_stream Hub (deque queues, publish never awaits subscribers) "
        f"| {result['hub_events_per_s']:,.0f} | {result['hub_events_per_cpu_s']:,.0f} "
        f"| {result['ratio']:.2f}x / {result['cpu_ratio']:.2f}x |",
        f"| naive (memory channel per subscriber, publisher awaits each send) "
        f"| {result['naive_events_per_s']:,.0f} | {result['naive_events_per_cpu_s']:,.0f} "
        f"| 1.00x / 1.00x |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: ``python -m benchmarks.fanout``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--capacity", type=int, default=DEFAULT_CAPACITY)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    result = run(
        subscribers=args.subscribers,
        events=args.events,
        capacity=args.capacity,
        repeats=args.repeats,
    )
    print(to_markdown(result))


if __name__ == "__main__":
    main()
