"""BoundedQueue: policies, batching, ending, statistics, cancellation."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trio_stream.core import BoundedQueue, Overflow, SubscriberDisconnected


def fill(queue: BoundedQueue[int], items: range) -> list[bool]:
    return [queue.put_nowait(item) for item in items]


def test_rejects_bad_capacity_and_policy() -> None:
    for capacity in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="capacity"):
            BoundedQueue(capacity)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Overflow"):
        BoundedQueue(4, "block")  # type: ignore[arg-type]


def test_defaults_are_documented_values() -> None:
    queue: BoundedQueue[int] = BoundedQueue()
    assert queue.capacity == 256
    assert queue.overflow is Overflow.DISCONNECT


async def test_get_batch_takes_everything_queued_in_one_step() -> None:
    queue: BoundedQueue[int] = BoundedQueue(8)
    fill(queue, range(5))
    assert await queue.get_batch() == [0, 1, 2, 3, 4]
    stats = queue.statistics()
    assert (stats.depth, stats.peak, stats.delivered) == (0, 5, 5)


async def test_get_batch_respects_max_items() -> None:
    queue: BoundedQueue[int] = BoundedQueue(8)
    fill(queue, range(5))
    assert await queue.get_batch(2) == [0, 1]
    assert await queue.get_batch(10) == [2, 3, 4]
    with pytest.raises(ValueError, match="max_items"):
        await queue.get_batch(0)
    with pytest.raises(ValueError, match="max_items"):
        queue.get_batch_nowait(0)


def test_drop_oldest_keeps_the_newest() -> None:
    queue: BoundedQueue[int] = BoundedQueue(3, Overflow.DROP_OLDEST)
    assert all(fill(queue, range(10)))
    assert queue.get_batch_nowait() == [7, 8, 9]
    stats = queue.statistics()
    assert (stats.dropped, stats.peak, stats.disconnected) == (7, 3, False)


def test_drop_newest_keeps_the_oldest() -> None:
    queue: BoundedQueue[int] = BoundedQueue(3, Overflow.DROP_NEWEST)
    assert all(fill(queue, range(10)))
    assert queue.get_batch_nowait() == [0, 1, 2]
    assert queue.statistics().dropped == 7


async def test_disconnect_frees_items_and_next_receive_raises() -> None:
    queue: BoundedQueue[int] = BoundedQueue(3)
    assert fill(queue, range(5)) == [True, True, True, False, False]
    stats = queue.statistics()
    assert (stats.depth, stats.peak, stats.disconnected, stats.closed) == (0, 3, True, True)
    assert queue.disconnected
    assert queue.closed
    assert len(queue) == 0
    with pytest.raises(SubscriberDisconnected):
        await queue.get_batch()
    queue.close()  # no effect on a disconnected queue
    assert queue.disconnected


async def test_disconnect_wakes_a_waiting_receiver() -> None:
    queue: BoundedQueue[int] = BoundedQueue(2)
    async with trio.open_nursery() as nursery:

        async def receiver() -> None:
            with pytest.raises(SubscriberDisconnected):
                await queue.get_batch()

        nursery.start_soon(receiver)
        await trio.testing.wait_all_tasks_blocked()
        queue.disconnect()
        queue.disconnect()  # idempotent


async def test_close_drains_then_returns_empty() -> None:
    queue: BoundedQueue[int] = BoundedQueue(4)
    fill(queue, range(3))
    queue.close()
    queue.close()
    assert queue.put_nowait(99) is False
    assert await queue.get_batch(2) == [0, 1]
    assert await queue.get_batch() == [2]
    assert await queue.get_batch() == []
    assert queue.get_batch_nowait() == []


async def test_close_wakes_a_waiting_receiver() -> None:
    queue: BoundedQueue[int] = BoundedQueue(4)
    got: list[list[int]] = []
    async with trio.open_nursery() as nursery:

        async def receiver() -> None:
            got.append(await queue.get_batch())

        nursery.start_soon(receiver)
        await trio.testing.wait_all_tasks_blocked()
        queue.close()
    assert got == [[]]


async def test_put_wakes_the_receiver_and_it_batches_later_items() -> None:
    queue: BoundedQueue[int] = BoundedQueue(4)
    got: list[list[int]] = []
    async with trio.open_nursery() as nursery:

        async def receiver() -> None:
            got.append(await queue.get_batch())

        nursery.start_soon(receiver)
        await trio.testing.wait_all_tasks_blocked()
        queue.put_nowait(1)
        queue.put_nowait(2)  # before the receiver runs: same batch
    assert got == [[1, 2]]


def test_get_batch_nowait_would_block_when_empty() -> None:
    queue: BoundedQueue[int] = BoundedQueue(4)
    with pytest.raises(trio.WouldBlock):
        queue.get_batch_nowait()


async def test_second_concurrent_receiver_is_busy() -> None:
    queue: BoundedQueue[int] = BoundedQueue(4)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.get_batch)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.BusyResourceError):
            await queue.get_batch()
        queue.close()


async def test_cancelled_receive_takes_nothing(autojump_clock: trio.testing.MockClock) -> None:
    queue: BoundedQueue[int] = BoundedQueue(4)
    with trio.CancelScope() as scope:
        scope.cancel()
        queue.put_nowait(1)
        await queue.get_batch()
    assert queue.statistics().depth == 1
    with trio.move_on_after(1) as scope2:
        await queue.get_batch(1)
        await queue.get_batch(1)  # empty: waits, then cancelled by the deadline
    assert scope2.cancelled_caught
    queue.put_nowait(2)
    assert queue.get_batch_nowait() == [2]


async def test_receive_is_a_checkpoint_even_with_items() -> None:
    queue: BoundedQueue[int] = BoundedQueue(4)
    queue.put_nowait(1)
    with trio.testing.assert_checkpoints():
        await queue.get_batch()


async def test_put_nowait_never_checkpoints() -> None:
    queue: BoundedQueue[int] = BoundedQueue(2, Overflow.DROP_OLDEST)
    with trio.testing.assert_no_checkpoints():
        fill(queue, range(10))
    await queue.get_batch()  # (and receiving is one)


def test_block_put_nowait_would_block_when_full() -> None:
    queue: BoundedQueue[int] = BoundedQueue(2, Overflow.BLOCK)
    fill(queue, range(2))
    with pytest.raises(trio.WouldBlock):
        queue.put_nowait(3)


async def test_block_put_waits_for_room_and_loses_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue: BoundedQueue[int] = BoundedQueue(2, Overflow.BLOCK)
    got: list[int] = []
    async with trio.open_nursery() as nursery:

        async def slow_reader() -> None:
            while batch := await queue.get_batch(1):
                got.extend(batch)
                await trio.sleep(1)

        nursery.start_soon(slow_reader)
        start = trio.current_time()
        for item in range(10):
            assert await queue.put(item) is True
        # The reader takes one item a second: the producer was slowed down.
        assert trio.current_time() - start >= 7
        queue.close()
    assert got == list(range(10))
    stats = queue.statistics()
    assert stats.peak <= stats.capacity
    assert stats.dropped == 0


async def test_block_put_on_a_queue_closed_while_waiting_returns_false() -> None:
    queue: BoundedQueue[int] = BoundedQueue(1, Overflow.BLOCK)
    queue.put_nowait(0)
    results: list[bool] = []
    async with trio.open_nursery() as nursery:

        async def producer() -> None:
            results.append(await queue.put(1))

        nursery.start_soon(producer)
        await trio.testing.wait_all_tasks_blocked()
        queue.close()
    assert results == [False]


async def test_non_block_put_is_a_checkpoint_that_never_waits() -> None:
    queue: BoundedQueue[int] = BoundedQueue(1, Overflow.DROP_NEWEST)
    with trio.testing.assert_checkpoints():
        assert await queue.put(1) is True
    assert await queue.put(2) is True
    assert queue.statistics().dropped == 1


def test_block_overdraft_is_capped_at_twice_the_capacity() -> None:
    # Only a broker that ignores wait_for_room gets here; memory stays bounded.
    queue: BoundedQueue[int] = BoundedQueue(2, Overflow.BLOCK)
    results = [queue._offer(item) for item in range(5)]
    assert results == [True, True, True, True, False]
    assert queue.disconnected
    assert queue.statistics().peak == 4


def test_statistics_is_a_frozen_snapshot() -> None:
    queue: BoundedQueue[int] = BoundedQueue(4, Overflow.DROP_NEWEST)
    stats = queue.statistics()
    with pytest.raises(AttributeError):
        stats.depth = 3  # type: ignore[misc]
    assert stats.capacity == 4
    assert stats.overflow is Overflow.DROP_NEWEST


async def test_concurrent_receivers_share_the_items_without_a_false_end() -> None:
    queue: BoundedQueue[int] = BoundedQueue(4)
    got: list[list[int]] = []

    async def receiver() -> None:
        got.append(await queue.get_batch())

    async def put_when_idle() -> None:
        await trio.testing.wait_all_tasks_blocked()
        queue.put_nowait(2)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receiver)
        await trio.testing.wait_all_tasks_blocked()
        queue.put_nowait(1)  # wakes the parked receiver...
        nursery.start_soon(put_when_idle)
        # ...and this task races it for the item: the loser waits again,
        # never mistaking the empty queue for an end ([]).
        got.append(await queue.get_batch())
    assert sorted(got) == [[1], [2]]


async def test_a_third_racing_receiver_is_busy() -> None:
    queue: BoundedQueue[int] = BoundedQueue(4)
    outcomes: list[object] = []

    async def receiver() -> None:
        try:
            outcomes.append(await queue.get_batch())
        except trio.BusyResourceError:
            outcomes.append("busy")
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receiver)
        await trio.testing.wait_all_tasks_blocked()
        queue.put_nowait(1)  # wakes the parked one; two more race it
        nursery.start_soon(receiver)
        nursery.start_soon(receiver)
        await trio.testing.wait_all_tasks_blocked()
        # One took the item, one waits again, the third found the wait taken.
        assert sorted(map(str, outcomes)) == ["[1]", "busy"]
        queue.close()
    assert sorted(map(str, outcomes)) == ["[1]", "[]", "busy"]
