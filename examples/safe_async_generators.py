"""Lesson: three cancellation-safe ways to stream values out of a function.

A raw async generator runs in its caller's task, suspended at each ``yield``.
A ``yield`` inside a nursery or cancel scope delivers the caller's
cancellations into the wrong scope, and a caller that stops iterating leaves
the generator's ``finally`` to the garbage collector. Instead:

1. a plain generator (no nursery or cancel scope inside) under ``aclosing``;
2. ``trio.as_safe_channel``: ``yield`` anywhere; the body runs in its own task;
3. ``@asynccontextmanager`` + nursery + bounded memory channel: the explicit
   form, where you choose the capacity and own the tasks.

Each consumer below stops early and checks that every ``finally`` ran
before its block ended.

Run: python examples/safe_async_generators.py   (in-process, a fraction of a second)
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, asynccontextmanager

import trio

cleaned_up: list[str] = []


# 1. A plain generator: no nursery or cancel scope inside, so its yields are
# harmless; aclosing() makes its cleanup deterministic.
async def countdown(start: int) -> AsyncGenerator[int, None]:  # noqa: ASYNC900  used with aclosing
    n = start
    try:
        while True:
            await trio.lowlevel.checkpoint()  # stands for real work: a read, a query
            if n == 0:
                return
            yield n
            n -= 1
    finally:
        cleaned_up.append("countdown")  # e.g. close a cursor


async def use_aclosing() -> None:
    async with aclosing(countdown(10)) as numbers:
        async for n in numbers:
            if n == 7:
                break  # without aclosing, the finally would wait for the GC
    assert cleaned_up[-1] == "countdown"
    print("1. aclosing: stopped at 7; the generator's finally ran at the block's end")


# 2. as_safe_channel: this yield is inside a cancel scope (the overall time
# limit), which a raw async generator must never do. Here the body runs in
# its own task and hands each value over a channel.
@trio.as_safe_channel
async def ticks(interval: float) -> AsyncGenerator[int, None]:
    try:
        with trio.fail_after(5):  # the whole stream may last 5 s at most
            n = 0
            while True:
                await trio.sleep(interval)
                # (flake8-async 26.8 knows as_safe_channel for ASYNC900 only)
                yield n  # noqa: ASYNC101, ASYNC119  safe: as_safe_channel runs it in its own task
                n += 1
    finally:
        cleaned_up.append("ticks")


async def use_as_safe_channel() -> None:
    async with ticks(0.001) as receive:
        async for n in receive:
            if n == 3:
                break  # leaving the block cancels the producer task
    assert cleaned_up[-1] == "ticks"
    print("2. as_safe_channel: stopped at 3; the producer task was cancelled and cleaned up")


# 3. The explicit form: producers in a nursery, a bounded channel between
# them and the consumer (a slow consumer pauses the producers), and the
# nursery cancelled when the consumer's block ends.
@asynccontextmanager
async def open_merged(
    *names: str, capacity: int = 8
) -> AsyncIterator[trio.MemoryReceiveChannel[str]]:
    send, receive = trio.open_memory_channel[str](capacity)

    async def produce(name: str, send: trio.MemorySendChannel[str]) -> None:
        try:
            with send:  # closed when this producer ends, however it ends
                n = 0
                while True:
                    await send.send(f"{name}{n}")
                    n += 1
                    await trio.sleep(0.001)
        finally:
            cleaned_up.append(f"producer {name}")

    async with trio.open_nursery() as nursery:
        with send:  # each producer gets a clone; ours is closed at once
            for name in names:
                nursery.start_soon(produce, name, send.clone())
        try:
            with receive:
                yield receive  # safe: the caller's block runs INSIDE the nursery
        finally:
            nursery.cancel_scope.cancel()


async def use_context_manager() -> None:
    merged: list[str] = []
    async with open_merged("a", "b") as values:
        async for value in values:
            merged.append(value)
            if len(merged) == 6:
                break
    assert {"producer a", "producer b"} <= set(cleaned_up)
    print(f"3. context manager: merged {merged}; both producers cancelled and cleaned up")


async def main() -> None:
    await use_aclosing()
    await use_as_safe_channel()
    await use_context_manager()
    print("safe generators ok: every finally ran before its block ended; no task outlived it")


if __name__ == "__main__":
    trio.run(main)
