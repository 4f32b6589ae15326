"""CPU time the hypervisor took from the cores during a run (``steal`` in /proc/stat).

On a virtual machine a core can stop for milliseconds while the host runs
something else. Figures taken meanwhile measure the host: scenario B's p99,
the 200th-slowest of 20,000 deliveries, is set by the few events such a
stop delays (measured here: repetitions during which the host took under
1 % of a pinned core had p99s of 3.3-6.5 ms, whatever the server; those
with 3-10 % had 9-35 ms). So the client records each core's steal over the
measured window, and the harness runs a repetition again when the host
took more than :data:`NOISY_SHARE` of either core (at most :data:`RETRIES`
times; a run that broke the contract is always kept).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = [
    "NOISY_SHARE",
    "RETRIES",
    "parse_steal",
    "pick",
    "read_steal",
    "run_until_quiet",
    "steal_share",
]

NOISY_SHARE = 0.01  # of a core's time over the measured window
RETRIES = 2  # extra attempts per repetition at most
# /proc/stat counts in ticks (10 ms): a shorter window is judged as if this
# long, so that one tick does not make a 60 ms run look 16 % disturbed.
MIN_WINDOW = 0.5  # seconds


def parse_steal(text: str, ticks_per_second: float) -> dict[str, float]:
    """Seconds of steal per core (``{"0": ..., "1": ...}``) from /proc/stat's text."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        fields = line.split()
        # "cpuN user nice system idle iowait irq softirq steal ...": the
        # aggregate "cpu" line has no number and is skipped.
        if len(fields) > 8 and fields[0].startswith("cpu") and fields[0][3:].isdigit():
            found[fields[0][3:]] = int(fields[8]) / ticks_per_second
    return found


def read_steal() -> dict[str, float]:
    """This machine's steal per core so far, in seconds; ``{}`` where unknown."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            text = stat.read()
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return {}
    return parse_steal(text, ticks)


def steal_share(run: Mapping[str, Any], cores: Sequence[int | None]) -> float | None:
    """The largest share of a core the host took during ``run``'s measured window.

    ``cores``: the pinned cores (``None`` entries, i.e. unpinned, mean every
    core). None when the run recorded no steal (no /proc/stat, or it failed
    before the window).
    """
    stolen: Mapping[str, float] | None = run.get("steal_s")
    wall = run.get("wall_s")
    if not stolen or not wall:
        return None
    wanted = {str(core) for core in cores if core is not None}
    if len(wanted) < len(cores) or not wanted & stolen.keys():
        wanted = set(stolen)
    return max(stolen.get(core, 0.0) for core in wanted) / max(float(wall), MIN_WINDOW)


def pick(attempts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The attempt of a repetition the host disturbed least (the last one if none recorded it)."""
    measured = [a for a in attempts if a.get("steal_share") is not None]
    if not measured:
        return attempts[-1]
    return min(measured, key=lambda a: float(a["steal_share"]))


def run_until_quiet(
    attempt: Callable[[], dict[str, Any]],
    *,
    retries: int,
    cores: Sequence[int | None],
    broken: Callable[[dict[str, Any]], bool],
) -> dict[str, Any]:
    """Run ``attempt()`` again (``retries`` times at most) while the host took too much.

    Too much: more than :data:`NOISY_SHARE` of a core. Returns the attempt
    kept (the least disturbed), with ``steal_share`` and ``attempts`` (how
    many ran). One that broke the contract ends the attempts and is kept: a
    retry never hides it.
    """
    attempts: list[dict[str, Any]] = []
    while len(attempts) <= retries:
        run = attempt()
        share = run["steal_share"] = steal_share(run, cores)
        attempts.append(run)
        if share is None or share <= NOISY_SHARE or broken(run):
            break
    kept = attempts[-1] if broken(attempts[-1]) else pick(attempts)
    kept["attempts"] = len(attempts)
    return kept
