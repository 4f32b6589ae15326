"""Supervision helpers: a heartbeat and a reconnect loop, both startable.

They are deliberately generic (callables in, typed errors out) so that the
SSE client, the WebSocket client and server share one implementation of
"keep doing this on a cadence" and "keep a session alive, backing off".
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, NoReturn, TypeVar, overload

import trio

from ._errors import ReconnectError, RetryBudgetExhausted
from ._groups import collapse_group, reraise

__all__ = ["heartbeat", "reconnect_loop"]

logger = logging.getLogger("trio_stream.core")

R = TypeVar("R")
S = TypeVar("S")


def _check_interval(interval: float) -> None:
    if not (isinstance(interval, int | float) and math.isfinite(interval) and interval > 0):
        raise ValueError("interval must be a finite number of seconds > 0")


async def heartbeat(  # noqa: ASYNC114  lead: list in .flake8 startable-in-context-manager
    send: Callable[[], Awaitable[object]],
    interval: float,
    *,
    immediate: bool = True,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Await ``send()`` every ``interval`` seconds, until cancelled.

    Start it with ``await nursery.start(heartbeat, send, 15.0)``.
    With ``immediate=True`` (the default) the first beat is sent at once and
    readiness is reported after it completed - an SSE endpoint uses this to
    flush its headers before its producer starts; with ``immediate=False``
    readiness is reported at once and the first beat comes after ``interval``.

    Beats are on a fixed schedule (``interval`` from one beat's start to the
    next), so a slow ``send`` does not make the cadence drift; a ``send`` that
    overruns a whole interval skips the missed beats instead of bursting.
    An exception from ``send`` propagates (the owner decides what a failed
    heartbeat means); cancellation stops it at its current checkpoint.
    """
    _check_interval(interval)
    next_beat = trio.current_time() + (0.0 if immediate else interval)
    ready = not immediate
    if ready:
        task_status.started()
    while True:
        await trio.sleep_until(next_beat)
        await send()
        if not ready:
            ready = True
            task_status.started()
        next_beat += interval
        now = trio.current_time()
        if next_beat <= now:
            next_beat = now + interval


class _SessionStatus(trio.TaskStatus[S], Generic[S]):
    """The ``task_status`` handed to each session of a :func:`reconnect_loop`."""

    def __init__(self, on_up: Callable[[Any], None]) -> None:
        self.up = False
        self._on_up = on_up

    @overload
    def started(self: _SessionStatus[None]) -> None: ...

    @overload
    def started(self, value: S) -> None: ...

    def started(self, value: S | None = None) -> None:
        if self.up:
            raise RuntimeError("called 'started' twice in one session")
        self.up = True
        self._on_up(value)


async def reconnect_loop(  # noqa: ASYNC114  lead: list in .flake8 startable-in-context-manager
    connect: Callable[[trio.TaskStatus[S]], Awaitable[R]],
    *,
    backoff: Iterable[float],
    classify: Callable[[Exception], bool],
    max_attempts: int | None = 10,
    on_retry: Callable[[Exception, float], object] | None = None,
    task_status: trio.TaskStatus[S] = trio.TASK_STATUS_IGNORED,
) -> R:
    """Run sessions of ``connect`` until one ends normally; retry failures with backoff.

    ``await connect(session_status)`` runs one session (connect, then serve
    until the connection ends). It calls ``session_status.started(value)``
    once the session is up; that resets the backoff (``backoff.reset()`` if it
    has one, and a fresh ``iter(backoff)``) and the attempt count, and the
    first time also reports readiness: ``value = await
    nursery.start(reconnect_loop, connect, ...)`` returns when the first
    session is up.

    When a session raises, ``classify(error)`` says whether to retry; if so
    the loop logs it (INFO when the session had come up: a server close is
    the expected way to reconnect; WARNING when it never got up), sleeps the
    next delay from ``backoff`` (any iterable of seconds, e.g.
    :class:`~trio_stream.protocol.Backoff`), calls ``on_retry(error, delay)``
    first if given, and connects again. A non-retryable error is
    re-raised as is. After ``max_attempts`` consecutive failed attempts
    (``None``: no limit), or when ``backoff`` runs out of delays, it raises
    :class:`RetryBudgetExhausted` ``from`` the last error.

    A session that returns normally ends the loop with its return value (to
    reconnect after a clean end, raise an error that ``classify`` retries).

    Exception groups from the session's own nurseries are collapsed: a group
    with one real error is handled as that error; several become one
    :class:`ReconnectError` (``from`` the group), which is not retried.
    Cancellation propagates at once, also while sleeping between attempts.
    """
    if max_attempts is not None and max_attempts < 1:
        raise ValueError("max_attempts must be >= 1 or None")
    delays = iter(backoff)
    failures = 0
    reported = False

    def on_up(value: Any) -> None:
        nonlocal delays, failures, reported
        failures = 0
        reset = getattr(backoff, "reset", None)
        if callable(reset):
            reset()
        delays = iter(backoff)
        if not reported:
            reported = True
            task_status.started(value)

    while True:
        session: _SessionStatus[S] = _SessionStatus(on_up)
        try:
            return await connect(session)
        except BaseExceptionGroup as group:
            error = _single_error(group)
        except Exception as exc:
            error = exc
        failures += 1
        if not classify(error):
            raise error
        if max_attempts is not None and failures >= max_attempts:
            raise RetryBudgetExhausted(
                f"gave up after {failures} failed attempts", attempts=failures
            ) from error
        delay = next(delays, None)
        if delay is None:
            raise RetryBudgetExhausted(
                f"gave up after {failures} failed attempts: no more backoff delays",
                attempts=failures,
            ) from error
        if on_retry is not None:
            on_retry(error, delay)
        # A session that was up and then ended (the server closed it, a
        # stream ended) is the expected way to reconnect: INFO. Failing to
        # get a session up at all is a real failure: WARNING.
        logger.log(
            logging.INFO if session.up else logging.WARNING,
            "session failed (%s); retrying in %.3f s (attempt %d)",
            type(error).__name__,
            delay,
            failures + 1,
        )
        await trio.sleep(delay)


def _single_error(group: BaseExceptionGroup[BaseException]) -> Exception:
    """The one error a session's exception group stands for; raises what must propagate."""
    single = collapse_group(group)
    if single is None:
        raise ReconnectError("session failed with several errors at once") from group
    if not isinstance(single, Exception):
        reraise(single)  # Cancelled, KeyboardInterrupt...: not ours to handle
    return single
