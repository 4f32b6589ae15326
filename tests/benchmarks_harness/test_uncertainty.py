"""The interval around scenario B's p99, and the report row that shows it."""

from __future__ import annotations

import random
from typing import Any

import pytest

from benchmarks._client import by_event
from benchmarks._report import render
from benchmarks._scenarios import FULL, SERVERS
from benchmarks._uncertainty import _Resampler, compare, events_of, p99

Events = list[list[int]]


def _repetition(rng: random.Random, *, shift: int = 0, stops: int = 3) -> Events:
    """200 events to 100 subscribers, ~20 µs apart; a few events hit by a host stop."""
    events = [[300 + 20 * i + rng.randrange(50) + shift for i in range(100)] for _ in range(200)]
    for event in rng.sample(events, stops):
        at = rng.randrange(100)
        stop = rng.randrange(4_000, 20_000)
        event[at:] = [latency + stop for latency in event[at:]]
    return events


def _repetitions(seed: int, count: int = 5, **kwargs: int) -> list[Events]:
    rng = random.Random(seed)
    return [_repetition(rng, **kwargs) for _ in range(count)]


def test_p99_is_the_clients() -> None:
    events = [[1000 * i + j for j in range(10)] for i in range(30)]  # 300 deliveries
    pool = sorted(v for event in events for v in event)
    assert p99(events) == pool[297] / 1000
    with pytest.raises(ValueError, match="no deliveries"):
        p99([])


def test_a_resample_reads_only_the_tail_and_gets_the_same_p99() -> None:
    events = _repetitions(1, count=1, stops=6)[0]
    resampler = _Resampler(events)
    for seed in range(50):
        picks = random.Random(seed).choices(range(len(events)), k=len(events))
        assert resampler.p99(random.Random(seed)) == p99([events[i] for i in picks])


def test_a_resample_of_quiet_events_falls_back_to_the_whole_pool() -> None:
    # One stopped event holds the whole tail: resamples without it must look further down.
    events = [[100 + i for i in range(100)] for _ in range(50)] + [[90_000] * 100] * 2
    resampler = _Resampler(events)
    for seed in range(20):
        picks = random.Random(seed).choices(range(len(events)), k=len(events))
        assert resampler.p99(random.Random(seed)) == p99([events[i] for i in picks])


def test_the_same_server_twice_is_level() -> None:
    found = compare(_repetitions(1), _repetitions(2), resamples=200)
    assert found.verdict == "level"
    assert found.difference.low < 0 < found.difference.high
    assert found.ours.low <= found.ours.value <= found.ours.high


def test_a_real_difference_is_seen_either_way() -> None:
    slow = _repetitions(3, shift=2_000, stops=0)
    fast = _repetitions(4, stops=0)
    assert compare(slow, fast, resamples=200).verdict == "worse"
    assert compare(fast, slow, resamples=200).verdict == "better"


def test_one_disturbed_repetition_does_not_decide() -> None:
    ours = _repetitions(5, count=3, stops=0)
    ours[0] = _repetition(random.Random(6), stops=40)  # the host took its core for a while
    found = compare(ours, _repetitions(7, count=3, stops=0), resamples=200)
    assert found.verdict == "level"
    assert found.ours.value < 3 < 10 < found.ours.high  # the interval shows the disturbed one
    assert found.theirs.high < 3


def test_the_interval_is_the_same_each_time() -> None:
    ours, theirs = _repetitions(8, count=3), _repetitions(9, count=3)
    assert compare(ours, theirs, resamples=100) == compare(ours, theirs, resamples=100)
    with pytest.raises(ValueError, match="no repetitions"):
        compare([], theirs)


def test_the_client_groups_latencies_by_event_in_microseconds() -> None:
    grouped = by_event([b"1", b"0", b"a", b"1"], [3_000, 1_000, 7_499, 5_000])
    assert grouped == [[1], [3, 5], [7]]
    assert events_of({"latency_by_event_us": grouped}) == grouped
    assert events_of({}) == []


def test_the_report_shows_the_b_target_with_its_interval() -> None:
    def run(server: str, events: Events) -> dict[str, Any]:
        return {
            "server": server,
            "scenario": "B",
            "complete": True,
            "latency_p50_ms": 1.0,
            "latency_p99_ms": p99(events),
            "latency_by_event_us": events,
        }

    runs = [run("trio_stream_sse", events) for events in _repetitions(10, count=3)]
    runs += [run("websockets_asyncio", events) for events in _repetitions(11, count=3)]
    meta = {"date": "today", "elapsed_s": 1.0, "reps": 3, "quick": False, "machine": {},
            "versions": {}}  # fmt: skip
    text = render(runs, scenarios={"B": FULL["B"]}, servers=SERVERS, unavailable={}, inproc={},
                  meta=meta)  # fmt: skip
    row = next(line for line in text.splitlines() if "intervals" in line)
    assert "against websockets_asyncio" in row
    assert "level: the difference is within the noise" in row
    runs = [{k: v for k, v in r.items() if k != "latency_by_event_us"} for r in runs]
    text = render(runs, scenarios={"B": FULL["B"]}, servers=SERVERS, unavailable={}, inproc={},
                  meta=meta)  # fmt: skip
    assert "intervals" not in text  # results from before the client recorded events
