"""Shared pieces of the fuzz tests: hypothesis settings, a hang guard, an error-log trap.

Fuzz tests state one invariant: every input is accepted, or rejected with the
documented exception; nothing else escapes, nothing hangs, and buffers stay
within the configured limits.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from hypothesis import HealthCheck, settings

# ``make test`` runs a modest, derandomized set (the same examples every run:
# a test suite must not fail at random). FUZZ_EXAMPLES=N explores instead:
# N random examples per test, e.g. FUZZ_EXAMPLES=20000 pytest tests/fuzz.
_EXPLORE = int(os.environ.get("FUZZ_EXAMPLES", "0"))

FUZZ_SETTINGS = settings(
    max_examples=_EXPLORE or 200,
    derandomize=not _EXPLORE,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
"""Untimed; 200 examples per pure-parser test (about a second each)."""

NETWORK_FUZZ_SETTINGS = settings(FUZZ_SETTINGS, max_examples=_EXPLORE or 100)
"""For examples that each start a server and talk to it over loopback (tens of ms each)."""

HANG_BOUND = 10.0
"""Seconds one example may take before it counts as a hang (a safety bound, not a timing)."""


class Hang(Exception):
    """An example ran past :data:`HANG_BOUND`."""


@contextmanager
def hang_guard(seconds: float = HANG_BOUND) -> Iterator[None]:
    """Raise :class:`Hang` in the body if it runs longer than ``seconds`` (sync code only).

    ``trio.fail_after`` bounds async code; pure synchronous parsers are bounded
    with a SIGALRM timer instead (the tests run in the main thread, on Linux).
    """

    def expired(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"an example ran for over {seconds}s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class _Trap(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def trap_error_logs(name: str = "trio_stream") -> Iterator[list[logging.LogRecord]]:
    """Collect ERROR records of logger ``name`` (and below) made in the body.

    Bad input must be logged at WARNING/INFO; an ERROR means an unexpected
    failure path ran (``caplog`` cannot be used inside ``@given``: it is
    function-scoped).
    """
    trap = _Trap()
    logger = logging.getLogger(name)
    logger.addHandler(trap)
    try:
        yield trap.records
    finally:
        logger.removeHandler(trap)
