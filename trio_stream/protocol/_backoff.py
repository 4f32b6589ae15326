"""Reconnection delays: exponential backoff with jitter, as a pure iterator."""

from __future__ import annotations

import math
import random as _random
from collections.abc import Callable, Iterator

__all__ = ["Backoff"]


def _check_number(name: str, value: float, *, low: float, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    too_high = high is not None and value > high
    if not low <= value or too_high or math.isinf(value):
        bound = "inf" if high is None else high
        raise ValueError(f"{name} must be finite and in [{low}, {bound}], got {value!r}")
    return float(value)


class Backoff(Iterator[float]):
    """Reconnection delays in seconds: exponential growth, capped, with full jitter.

    An infinite iterator. The ``n``-th delay since the last :meth:`reset`
    (``n`` from 0) is drawn below a cap that grows by ``multiplier`` per
    attempt up to ``maximum``::

        cap(0) = base                          (base = initial, or the server's retry)
        cap(n) = min(maximum, max(base, initial) * multiplier ** n)
        delay  = cap(n) * (1 - jitter * r)     (r uniform in [0, 1))

    ``jitter=1.0`` (the default) is "full jitter": each delay is uniform in
    ``(0, cap]``, which spreads out the reconnections of many clients dropped
    at once; ``jitter=0.0`` gives exactly the caps.

    A server's ``retry:`` field (:meth:`set_server_retry`) becomes the base,
    the first delay's cap, clamped to ``maximum`` so that a server can slow a
    client down but never stall it beyond the client's own limit. Repeated
    failures still grow from at least ``initial``: a server's ``retry: 0``
    allows one immediate attempt, not a reconnection storm.

    Call :meth:`reset` once a connection succeeds. ``random`` is the source of
    ``r``: a :class:`random.Random` (seed it for reproducible delays) or a
    zero-argument callable returning a float in ``[0, 1)``; by default a
    private ``random.Random()``.

    Pure: it computes delays and never sleeps; the caller waits (for example
    with ``trio.sleep``), so cancellation is entirely the caller's.
    """

    __slots__ = (
        "_attempts",
        "_base",
        "_initial",
        "_jitter",
        "_maximum",
        "_multiplier",
        "_next_cap",
        "_random",
        "_server_retry",
    )

    def __init__(
        self,
        initial: float = 0.5,
        maximum: float = 30.0,
        multiplier: float = 2.0,
        jitter: float = 1.0,
        *,
        random: _random.Random | Callable[[], float] | None = None,
    ) -> None:
        self._initial = _check_number("initial", initial, low=0.0)
        self._maximum = _check_number("maximum", maximum, low=self._initial)
        self._multiplier = _check_number("multiplier", multiplier, low=1.0)
        self._jitter = _check_number("jitter", jitter, low=0.0, high=1.0)
        if random is None:
            random = _random.Random()
        if isinstance(random, _random.Random):
            self._random: Callable[[], float] = random.random
        elif callable(random):
            self._random = random
        else:
            raise TypeError("random must be a random.Random or a callable returning [0, 1)")
        self._server_retry: float | None = None
        self._base = self._initial
        self._next_cap = self._base
        self._attempts = 0

    def __repr__(self) -> str:
        return (
            f"Backoff(initial={self._initial}, maximum={self._maximum}, "
            f"multiplier={self._multiplier}, jitter={self._jitter}, "
            f"server_retry={self._server_retry}, attempts={self._attempts})"
        )

    @property
    def initial(self) -> float:
        """The first delay's cap in seconds when the server sent no ``retry:``."""
        return self._initial

    @property
    def maximum(self) -> float:
        """The largest delay in seconds."""
        return self._maximum

    @property
    def multiplier(self) -> float:
        """How much the cap grows per failed attempt."""
        return self._multiplier

    @property
    def jitter(self) -> float:
        """The randomised fraction of each delay, from 0.0 (none) to 1.0 (full jitter)."""
        return self._jitter

    @property
    def server_retry(self) -> float | None:
        """The server's ``retry:`` in seconds (clamped to ``maximum``), or ``None``."""
        return self._server_retry

    @property
    def attempts(self) -> int:
        """How many delays were produced since the last :meth:`reset`."""
        return self._attempts

    def __iter__(self) -> Backoff:
        return self

    def __next__(self) -> float:
        """The next delay in seconds (never raises ``StopIteration``)."""
        cap = self._next_cap
        self._next_cap = min(self._maximum, max(cap, self._initial) * self._multiplier)
        self._attempts += 1
        r = self._random()
        if not 0.0 <= r < 1.0:
            raise ValueError(f"the random source returned {r!r}, outside [0, 1)")
        return cap * (1.0 - self._jitter * r)

    def reset(self) -> None:
        """Start again from the base delay: call it once a connection succeeds."""
        self._next_cap = self._base
        self._attempts = 0

    def set_server_retry(self, milliseconds: int) -> None:
        """Adopt a server's ``retry:`` (milliseconds) as the base delay, and :meth:`reset`.

        A server that sends ``retry:`` is reachable, so the sequence restarts
        from the new base.
        """
        if isinstance(milliseconds, bool) or not isinstance(milliseconds, int):
            raise TypeError("milliseconds must be an int")
        if milliseconds < 0:
            raise ValueError(f"milliseconds must not be negative, got {milliseconds}")
        # Compared as an int first: a huge value must not overflow a float.
        seconds = self._maximum if milliseconds > self._maximum * 1000 else milliseconds / 1000
        self._server_retry = self._base = seconds
        self.reset()
