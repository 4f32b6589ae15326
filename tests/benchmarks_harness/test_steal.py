"""The harness's account of the hypervisor's steal, and the runs it repeats."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks._report import is_broken, render
from benchmarks._scenarios import FULL, SERVERS
from benchmarks._steal import NOISY_SHARE, parse_steal, read_steal, run_until_quiet, steal_share

STAT = """cpu  3880232 29761 371181 3256134 17533 0 88391 143762 0 0
cpu0 1956056 14713 166122 1631267 4080 0 63032 56212 0 0
cpu1 1924176 15047 205059 1624867 13452 0 25359 87550 0 0
intr 123 0 0
ctxt 456
"""


def test_steal_per_core_from_proc_stat() -> None:
    assert parse_steal(STAT, 100) == {"0": 562.12, "1": 875.5}


def test_this_machine_reports_its_cores() -> None:
    stolen = read_steal()
    assert stolen, "Linux always has /proc/stat"
    assert all(seconds >= 0 for seconds in stolen.values())


def test_share_of_the_most_disturbed_pinned_core() -> None:
    run = {"steal_s": {"0": 0.05, "1": 0.2, "2": 3.0}, "wall_s": 10.0}
    assert steal_share(run, (0, 1)) == pytest.approx(0.02)
    # Unpinned: every core counts.
    assert steal_share(run, (None, None)) == pytest.approx(0.3)
    # A short window is judged as if half a second long (10 ms ticks).
    assert steal_share({"steal_s": {"0": 0.01}, "wall_s": 0.06}, (0, 1)) == pytest.approx(0.02)
    assert steal_share({"wall_s": 1.0}, (0, 1)) is None
    assert steal_share({"steal_s": {}, "wall_s": 1.0}, (0, 1)) is None


def _scripted(*steals: float, broken_at: int | None = None) -> Any:
    runs = iter(range(len(steals)))

    def attempt() -> dict[str, Any]:
        n = next(runs)
        run: dict[str, Any] = {"n": n, "steal_s": {"0": steals[n]}, "wall_s": 10.0}
        if n == broken_at:
            run["order_errors"] = 1
        return run

    return attempt


def test_a_quiet_run_is_kept_at_once() -> None:
    kept = run_until_quiet(_scripted(0.05, 0.0), retries=2, cores=(0, 1), broken=is_broken)
    assert (kept["n"], kept["attempts"]) == (0, 1)
    assert kept["steal_share"] == pytest.approx(0.005)


def test_a_disturbed_run_is_run_again_until_quiet() -> None:
    kept = run_until_quiet(_scripted(0.9, 0.5, 0.05), retries=2, cores=(0, 1), broken=is_broken)
    assert (kept["n"], kept["attempts"]) == (2, 3)


def test_after_the_retries_the_least_disturbed_is_kept() -> None:
    kept = run_until_quiet(_scripted(0.9, 0.3, 0.7), retries=2, cores=(0, 1), broken=is_broken)
    assert (kept["n"], kept["attempts"]) == (1, 3)
    assert kept["steal_share"] > NOISY_SHARE
    kept = run_until_quiet(_scripted(0.9), retries=0, cores=(0, 1), broken=is_broken)
    assert (kept["n"], kept["attempts"]) == (0, 1)


def test_a_broken_run_is_never_retried_away() -> None:
    kept = run_until_quiet(_scripted(0.9, 0.9, 0.0), retries=2, cores=(0, 1), broken=is_broken)
    assert kept["n"] == 2  # control: quiet at the third attempt
    scripted = _scripted(0.9, 0.9, 0.0, broken_at=1)
    kept = run_until_quiet(scripted, retries=2, cores=(0, 1), broken=is_broken)
    assert (kept["n"], kept["attempts"]) == (1, 2)
    assert is_broken(kept)


def test_the_report_says_what_the_host_took() -> None:
    def run(server: str, scenario: str, share: float, attempts: int) -> dict[str, Any]:
        return {
            "server": server,
            "scenario": scenario,
            "steal_share": share,
            "attempts": attempts,
            "complete": True,
            "latency_p50_ms": 1.0,
            "latency_p99_ms": 2.0,
        }

    runs = [
        run("trio_stream_sse", "B", 0.004, 1),
        run("websockets_asyncio", "B", 0.01, 3),
        run("trio_stream_sse", "B", 0.05, 3),
        run("trio_stream_sse", "C", 0.9, 1),  # memory: not counted
    ]
    meta = {"date": "today", "elapsed_s": 1.0, "reps": 3, "quick": False, "machine": {},
            "versions": {}}  # fmt: skip
    text = render(runs, scenarios={"B": FULL["B"]}, servers=SERVERS, unavailable={}, inproc={},
                  meta=meta)  # fmt: skip
    assert "median 1.0%, at most 5.0% of a core" in text
    assert "4 repetitions were run again" in text
    assert "still above it after the retries: B 1 of 3 repetitions" in text
