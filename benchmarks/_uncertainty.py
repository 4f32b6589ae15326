"""How sure scenario B's p99 is: a two-level bootstrap, over repetitions and events.

The table shows the median of each repetition's p99. On a virtual machine a
repetition's p99 is set by the few events a host stop happened to delay, so
two servers that spend the same time per delivery trade places from run to
run. This module puts an interval around that figure and around the
difference between two servers, so that a reader can tell a difference from
the noise.

Each resample draws as many repetitions as were run (with replacement), and
within each drawn repetition as many *events* as it measured (with
replacement); it takes every drawn repetition's p99, as the client defines it
(``sorted(latencies)[min(n - 1, n * 99 // 100)]``), and their median, as the
table does. Repetitions are resampled because the host's noise differs from
one to the next (one disturbed repetition must not decide); events, not
deliveries, because a stop in the middle of a fan-out delays every subscriber
after it, so the deliveries of one event are not independent.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["CONFIDENCE", "RESAMPLES", "Comparison", "Interval", "compare", "events_of", "p99"]

CONFIDENCE = 0.95
RESAMPLES = 1000
# Only deliveries above this share of a repetition can be a resample's p99
# (in practice); keeping just those makes a resample cost a sort of ~3 % of it.
_TAIL_SHARE = 0.97


@dataclass(frozen=True, slots=True)
class Interval:
    """A figure in milliseconds with its bootstrap interval."""

    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.2f} [{self.low:.2f}, {self.high:.2f}]"


@dataclass(frozen=True, slots=True)
class Comparison:
    """Two servers' pooled p99s and their difference (``ours - theirs``)."""

    ours: Interval
    theirs: Interval
    difference: Interval

    @property
    def verdict(self) -> str:
        """``"better"``, ``"worse"`` or ``"level"`` (the interval holds zero)."""
        if self.difference.high < 0:
            return "better"
        if self.difference.low > 0:
            return "worse"
        return "level"


def events_of(run: dict[str, Any]) -> list[list[int]]:
    """One run's delivery latencies (µs) per event, as the client recorded them."""
    return list(run.get("latency_by_event_us") or ())


def p99(events: Sequence[Sequence[int]]) -> float:
    """The p99 in milliseconds of all deliveries of ``events``, as the client computes it."""
    pool = sorted(value for event in events for value in event)
    if not pool:
        raise ValueError("no deliveries")
    n = len(pool)
    return pool[min(n - 1, n * 99 // 100)] / 1000


class _Resampler:
    """p99 of a resample of one repetition's events, looking only at its top few percent."""

    def __init__(self, events: Sequence[Sequence[int]]) -> None:
        pool = sorted(value for event in events for value in event)
        if not pool:
            raise ValueError("no deliveries")
        threshold = pool[int(len(pool) * _TAIL_SHARE)]
        self.value = pool[min(len(pool) - 1, len(pool) * 99 // 100)] / 1000  # as p99()
        self.events = events
        self.sizes = [len(event) for event in events]
        self.tails = [
            sorted((v for v in event if v >= threshold), reverse=True) for event in events
        ]

    def p99(self, rng: random.Random) -> float:
        picks = rng.choices(range(len(self.events)), k=len(self.events))
        n = sum(self.sizes[i] for i in picks)
        rank = n - 1 - min(n - 1, n * 99 // 100)  # 0 is the slowest delivery
        tail = [value for i in picks for value in self.tails[i]]
        if len(tail) > rank:
            tail.sort(reverse=True)
            return tail[rank] / 1000
        return p99([self.events[i] for i in picks])  # a resample of mostly quiet events


def _median_p99(repetitions: Sequence[_Resampler], rng: random.Random) -> float:
    drawn = rng.choices(repetitions, k=len(repetitions))
    return statistics.median(repetition.p99(rng) for repetition in drawn)


def _interval(value: float, samples: list[float]) -> Interval:
    samples = sorted(samples)
    cut = int(len(samples) * (1 - CONFIDENCE) / 2)
    return Interval(value, samples[cut], samples[len(samples) - 1 - cut])


def compare(
    ours: Sequence[Sequence[Sequence[int]]],
    theirs: Sequence[Sequence[Sequence[int]]],
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Comparison:
    """The median p99 of two servers' repetitions, and their difference, with intervals.

    ``ours`` and ``theirs`` hold one list of events per repetition (see
    :func:`events_of`). Seeded, so that a report rendered twice from the same
    results says the same.
    """
    if not ours or not theirs:
        raise ValueError("no repetitions")
    rng = random.Random(seed)
    mine, peer = [_Resampler(r) for r in ours], [_Resampler(r) for r in theirs]
    a = [_median_p99(mine, rng) for _ in range(resamples)]
    b = [_median_p99(peer, rng) for _ in range(resamples)]
    ours_p99 = statistics.median(r.value for r in mine)
    theirs_p99 = statistics.median(r.value for r in peer)
    return Comparison(
        ours=_interval(ours_p99, a),
        theirs=_interval(theirs_p99, b),
        difference=_interval(ours_p99 - theirs_p99, [x - y for x, y in zip(a, b, strict=True)]),
    )
