"""heartbeat and reconnect_loop: cadence, backoff, reset, give-up, exception groups."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

from trio_stream.core import (
    ReconnectError,
    RetryBudgetExhausted,
    heartbeat,
    reconnect_loop,
)
from trio_stream.core._groups import collapse_group
from trio_stream.protocol import Backoff, TrioStreamError

# -- heartbeat -----------------------------------------------------------------


async def test_heartbeat_sends_at_once_then_every_interval(
    autojump_clock: trio.testing.MockClock,
) -> None:
    times: list[float] = []

    async def send() -> None:
        times.append(trio.current_time())
        await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        start = trio.current_time()
        await nursery.start(heartbeat, send, 15)
        assert times == [start]  # ready only after the first beat went out
        await trio.sleep(61)
        nursery.cancel_scope.cancel()
    assert [t - start for t in times] == [0, 15, 30, 45, 60]


async def test_heartbeat_not_immediate_is_ready_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    times: list[float] = []

    async def send() -> None:
        times.append(trio.current_time())
        await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        start = trio.current_time()
        await nursery.start(
            lambda task_status: heartbeat(
                send, interval=2, immediate=False, task_status=task_status
            )
        )
        assert times == []
        await trio.sleep(7)
        nursery.cancel_scope.cancel()
    assert [t - start for t in times] == [2, 4, 6]


async def test_heartbeat_keeps_its_cadence_and_skips_overrun_beats(
    autojump_clock: trio.testing.MockClock,
) -> None:
    times: list[float] = []
    durations = iter([0.5, 2.5, 0.0, 0.0])

    async def send() -> None:
        times.append(trio.current_time())
        await trio.sleep(next(durations, 0.0))

    async with trio.open_nursery() as nursery:
        start = trio.current_time()
        nursery.start_soon(heartbeat, send, 1.0)
        await trio.sleep(6.1)
        nursery.cancel_scope.cancel()
    # 0: on time despite the 0.5 s send; 1: takes 2.5 s, beats at 2 and 3 are
    # skipped, not sent in a burst; then on a fresh schedule.
    assert [t - start for t in times] == [0, 1, 4.5, 5.5]


async def test_heartbeat_propagates_a_failed_send() -> None:
    async def send() -> None:
        await trio.lowlevel.checkpoint()
        raise ConnectionError("peer gone")

    with pytest.raises(ConnectionError):
        await heartbeat(send, interval=1)


@pytest.mark.parametrize("interval", [0, -1, float("inf"), float("nan"), "1"])
async def test_heartbeat_rejects_bad_intervals(interval: object) -> None:
    async def send() -> None:
        await trio.lowlevel.checkpoint()  # pragma: no cover

    with pytest.raises(ValueError, match="interval"):
        await heartbeat(send, interval=interval)  # type: ignore[arg-type]


# -- reconnect_loop --------------------------------------------------------------


class Sessions:
    """Scripted sessions: each entry is an exception to raise, "up" then an
    exception (a session that got going, then failed), or a return value."""

    def __init__(self, script: list[object]) -> None:
        self.script = list(script)
        self.starts: list[float] = []

    async def connect(self, task_status: trio.TaskStatus[str]) -> object:  # noqa: ASYNC114  run by reconnect_loop
        self.starts.append(trio.current_time())
        await trio.lowlevel.checkpoint()
        step = self.script.pop(0)
        if isinstance(step, tuple) and step[0] == "up":
            task_status.started(f"session {len(self.starts)}")
            await trio.sleep(100)
            step = step[1]
        if isinstance(step, BaseException):
            raise step
        return step


def retry_os_errors(exc: Exception) -> bool:
    return isinstance(exc, OSError)


async def test_retries_with_the_backoff_delays_and_returns_the_session_result(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sessions = Sessions([OSError("1"), OSError("2"), OSError("3"), "done"])
    retries: list[tuple[str, float]] = []
    result = await reconnect_loop(
        sessions.connect,
        backoff=[1.0, 2.0, 4.0],
        classify=retry_os_errors,
        on_retry=lambda exc, delay: retries.append((str(exc), delay)),
    )
    assert result == "done"
    start = sessions.starts[0]
    assert [t - start for t in sessions.starts] == [0, 1, 3, 7]
    assert retries == [("1", 1.0), ("2", 2.0), ("3", 4.0)]


async def test_a_session_that_got_going_resets_backoff_and_budget(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Without the reset, the third failure would exhaust max_attempts=3.
    sessions = Sessions([OSError(), OSError(), ("up", OSError()), OSError(), "end"])
    backoff = Backoff(initial=1.0, maximum=60.0, multiplier=2.0, jitter=0.0)
    results: list[object] = []

    async def run(task_status: trio.TaskStatus[str]) -> None:  # noqa: ASYNC114, ASYNC128  reconnect_loop calls started()
        results.append(
            await reconnect_loop(
                sessions.connect,
                backoff=backoff,
                classify=retry_os_errors,
                max_attempts=3,
                task_status=task_status,
            )
        )

    async with trio.open_nursery() as nursery:
        assert await nursery.start(run) == "session 3"  # ready once a session is up
    assert results == ["end"]
    gaps = [b - a for a, b in zip(sessions.starts, sessions.starts[1:], strict=False)]
    # 1 s, 2 s; session 3 ran 100 s then failed: the delays start over at 1 s.
    assert gaps == [1, 2, 101, 2]


async def test_gives_up_after_max_attempts_from_the_last_error(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    sessions = Sessions([OSError(n) for n in range(5)])
    with (
        caplog.at_level(logging.WARNING, logger="trio_stream.core"),
        pytest.raises(RetryBudgetExhausted) as info,
    ):
        await reconnect_loop(
            sessions.connect,
            backoff=Backoff(jitter=0.0),
            classify=retry_os_errors,
            max_attempts=3,
        )
    assert info.value.attempts == 3
    assert isinstance(info.value, TrioStreamError)
    assert isinstance(info.value, ReconnectError)
    assert isinstance(info.value.__cause__, OSError)
    assert info.value.__cause__.args == (2,)
    assert len(sessions.starts) == 3
    assert caplog.text.count("retrying in") == 2


async def test_gives_up_when_the_delays_run_out(autojump_clock: trio.testing.MockClock) -> None:
    sessions = Sessions([OSError(), OSError(), OSError()])
    with pytest.raises(RetryBudgetExhausted, match="no more backoff delays") as info:
        await reconnect_loop(
            sessions.connect, backoff=[0.5], classify=retry_os_errors, max_attempts=None
        )
    assert info.value.attempts == 2


async def test_a_non_retryable_error_is_raised_as_is() -> None:
    sessions = Sessions([PermissionError("no"), "unused"])
    with pytest.raises(PermissionError):
        await reconnect_loop(sessions.connect, backoff=[1.0], classify=lambda e: False)
    assert len(sessions.starts) == 1


async def test_a_group_with_one_error_is_handled_as_that_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[Exception] = []

    def classify(exc: Exception) -> bool:
        seen.append(exc)
        return isinstance(exc, OSError)

    sessions = Sessions([ExceptionGroup("inner nursery", [OSError("x")]), "ok"])
    assert await reconnect_loop(sessions.connect, backoff=[1.0], classify=classify) == "ok"
    assert len(seen) == 1
    assert type(seen[0]) is OSError


async def test_a_group_of_several_errors_becomes_one_typed_error() -> None:
    group = ExceptionGroup("inner nursery", [OSError("a"), ValueError("b")])
    sessions = Sessions([group])
    with pytest.raises(ReconnectError, match="several errors") as info:
        await reconnect_loop(sessions.connect, backoff=[1.0], classify=retry_os_errors)
    assert info.value.__cause__ is group
    assert not isinstance(info.value, BaseExceptionGroup)


class Fatal(BaseException):
    """Stands for KeyboardInterrupt / SystemExit: must propagate untouched."""


async def test_base_exceptions_in_a_group_propagate_untouched() -> None:
    sessions = Sessions([BaseExceptionGroup("inner", [OSError(), Fatal()])])
    with pytest.raises(Fatal):
        await reconnect_loop(sessions.connect, backoff=[1.0], classify=retry_os_errors)


async def test_cancellation_stops_the_loop_while_it_sleeps(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sessions = Sessions([OSError()] * 10)
    with trio.move_on_after(5) as scope:
        await reconnect_loop(
            sessions.connect, backoff=[3.0] * 10, classify=retry_os_errors, max_attempts=None
        )
    assert scope.cancelled_caught
    assert len(sessions.starts) == 2


async def test_started_twice_in_one_session_is_an_error() -> None:
    async def connect(task_status: trio.TaskStatus[None]) -> None:  # noqa: ASYNC114  run by reconnect_loop
        await trio.lowlevel.checkpoint()
        task_status.started()
        task_status.started()

    with pytest.raises(RuntimeError, match="twice"):
        await reconnect_loop(connect, backoff=[1.0], classify=retry_os_errors)


async def test_rejects_a_bad_budget() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        await reconnect_loop(
            Sessions([]).connect, backoff=[], classify=retry_os_errors, max_attempts=0
        )


def test_collapse_group_prefers_the_real_error_over_cancellations() -> None:
    def cancelled() -> trio.Cancelled:
        return trio.Cancelled._create()

    error = OSError()
    assert collapse_group(BaseExceptionGroup("g", [cancelled(), error])) is error
    only = cancelled()
    assert collapse_group(BaseExceptionGroup("g", [only, cancelled()])) is only
    nested = BaseExceptionGroup("outer", [BaseExceptionGroup("inner", [error])])
    assert collapse_group(nested) is error
    assert collapse_group(ExceptionGroup("g", [OSError(), OSError()])) is None


def test_collapse_group_drops_consequences_when_a_cause_explains_them() -> None:
    cause, closed, closed_too = RuntimeError("verdict"), EOFError(), EOFError()
    group = ExceptionGroup("g", [closed, cause])
    assert collapse_group(group, consequence=EOFError) is cause
    assert collapse_group(group) is None  # without the hint: two real errors
    only_consequences = ExceptionGroup("g", [closed, closed_too])
    assert collapse_group(only_consequences, consequence=EOFError) is None
    two_causes = ExceptionGroup("g", [closed, cause, OSError()])
    assert collapse_group(two_causes, consequence=EOFError) is None


async def test_a_plain_list_of_delays_restarts_after_a_good_session(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sessions = Sessions([OSError(), ("up", OSError()), ("up", OSError()), OSError(), "end"])
    assert await reconnect_loop(
        sessions.connect, backoff=[1.0, 5.0], classify=retry_os_errors
    ) == ("end")
    gaps = [b - a for a, b in zip(sessions.starts, sessions.starts[1:], strict=False)]
    assert gaps == [1, 101, 101, 5]  # each good session restarts the list at 1 s


async def test_a_session_that_was_up_logs_its_retry_at_info(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    sessions = Sessions([("up", OSError("server closed")), OSError("refused"), "end"])
    with caplog.at_level(logging.INFO, logger="trio_stream.core"):
        result = await reconnect_loop(
            sessions.connect, backoff=Backoff(jitter=0.0), classify=retry_os_errors
        )
    assert result == "end"
    levels = [r.levelno for r in caplog.records if "retrying in" in r.getMessage()]
    assert levels == [logging.INFO, logging.WARNING]
