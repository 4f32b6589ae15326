"""Backoff: exponential caps, full jitter, the server's retry, validation. Deterministic."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from trio_stream.protocol import Backoff


def constant(value: float) -> Callable[[], float]:
    return lambda: value


def take(backoff: Iterator[float], n: int) -> list[float]:
    return list(itertools.islice(backoff, n))


def test_without_jitter_delays_are_the_caps() -> None:
    backoff = Backoff(initial=0.5, maximum=5.0, multiplier=2.0, jitter=0.0)
    assert take(backoff, 6) == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff.attempts == 6


def test_full_jitter_scales_the_cap_by_one_minus_r() -> None:
    """delay = cap * (1 - jitter * r): r=0 gives the cap, r near 1 gives almost nothing."""
    assert take(Backoff(jitter=1.0, random=constant(0.0)), 3) == [0.5, 1.0, 2.0]
    assert take(Backoff(jitter=1.0, random=constant(0.75)), 3) == [0.125, 0.25, 0.5]


def test_partial_jitter() -> None:
    assert take(Backoff(initial=1.0, jitter=0.5, random=constant(0.5)), 2) == [0.75, 1.5]


def test_delays_stay_within_zero_and_the_cap() -> None:
    backoff = Backoff(initial=0.1, maximum=3.0, random=random.Random(42))
    caps = [min(3.0, 0.1 * 2**n) for n in range(50)]
    for delay, cap in zip(take(backoff, 50), caps, strict=True):
        assert 0.0 < delay <= cap


def test_seeded_random_is_reproducible() -> None:
    assert take(Backoff(random=random.Random(7)), 10) == take(Backoff(random=random.Random(7)), 10)


def test_default_random_source_gives_jittered_delays() -> None:
    delays = take(Backoff(initial=1.0, maximum=1.0), 20)
    assert all(0.0 < d <= 1.0 for d in delays)


def test_multiplier_one_is_constant() -> None:
    assert take(Backoff(initial=2.0, multiplier=1.0, jitter=0.0), 4) == [2.0] * 4


def test_is_infinite_and_never_overflows() -> None:
    backoff = Backoff(initial=1.0, maximum=10.0, multiplier=1000.0, jitter=0.0)
    assert take(backoff, 5000)[-1] == 10.0
    assert iter(backoff) is backoff


def test_reset_starts_over() -> None:
    backoff = Backoff(jitter=0.0)
    take(backoff, 4)
    backoff.reset()
    assert backoff.attempts == 0
    assert next(backoff) == 0.5


def test_server_retry_becomes_the_base() -> None:
    backoff = Backoff(initial=0.5, maximum=30.0, jitter=0.0)
    take(backoff, 3)
    backoff.set_server_retry(3000)
    assert backoff.server_retry == 3.0
    assert backoff.attempts == 0  # a server that sends retry: is up: start over
    assert take(backoff, 4) == [3.0, 6.0, 12.0, 24.0]
    backoff.reset()
    assert next(backoff) == 3.0  # it stays the base


def test_server_retry_is_clamped_to_maximum() -> None:
    backoff = Backoff(maximum=10.0, jitter=0.0)
    backoff.set_server_retry(60_000)
    assert take(backoff, 2) == [10.0, 10.0]
    backoff.set_server_retry(10**400)  # too big for a float: still clamped
    assert backoff.server_retry == 10.0


def test_server_retry_below_initial_then_grows_from_initial() -> None:
    """retry: 0 allows one immediate attempt, not a reconnection storm."""
    backoff = Backoff(initial=0.5, jitter=0.0)
    backoff.set_server_retry(0)
    assert take(backoff, 4) == [0.0, 1.0, 2.0, 4.0]
    backoff.set_server_retry(100)
    assert take(backoff, 3) == [0.1, 1.0, 2.0]


def test_server_retry_is_jittered_like_any_delay() -> None:
    backoff = Backoff(random=constant(0.5))
    backoff.set_server_retry(2000)
    assert next(backoff) == 1.0


@pytest.mark.parametrize("bad", [-1])
def test_server_retry_must_not_be_negative(bad: int) -> None:
    with pytest.raises(ValueError, match="negative"):
        Backoff().set_server_retry(bad)


@pytest.mark.parametrize("bad", [1.5, True, "100", None])
def test_server_retry_must_be_an_int(bad: object) -> None:
    with pytest.raises(TypeError, match="int"):
        Backoff().set_server_retry(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"initial": -0.1}, "initial"),
        ({"initial": float("inf")}, "initial"),
        ({"initial": float("nan")}, "initial"),
        ({"initial": 5.0, "maximum": 1.0}, "maximum"),
        ({"maximum": float("inf")}, "maximum"),
        ({"multiplier": 0.5}, "multiplier"),
        ({"jitter": -0.1}, "jitter"),
        ({"jitter": 1.5}, "jitter"),
    ],
)
def test_arguments_are_validated(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        Backoff(**kwargs)


@pytest.mark.parametrize("bad", ["1", None, True])
def test_arguments_must_be_numbers(bad: object) -> None:
    with pytest.raises(TypeError, match="initial"):
        Backoff(initial=bad)  # type: ignore[arg-type]


def test_random_must_be_usable() -> None:
    with pytest.raises(TypeError, match="random"):
        Backoff(random=0.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [1.0, -0.1, 2.0])
def test_random_source_outside_zero_one_is_an_error(bad: float) -> None:
    with pytest.raises(ValueError, match="random"):
        next(Backoff(random=constant(bad)))


def test_ints_are_accepted_and_exposed_as_floats() -> None:
    backoff = Backoff(initial=1, maximum=8, multiplier=3, jitter=0)
    assert (backoff.initial, backoff.maximum, backoff.multiplier, backoff.jitter) == (
        1.0,
        8.0,
        3.0,
        0.0,
    )
    assert backoff.server_retry is None
    assert take(backoff, 3) == [1.0, 3.0, 8.0]


def test_repr() -> None:
    backoff = Backoff(jitter=0.0)
    next(backoff)
    assert repr(backoff) == (
        "Backoff(initial=0.5, maximum=30.0, multiplier=2.0, jitter=0.0, "
        "server_retry=None, attempts=1)"
    )
