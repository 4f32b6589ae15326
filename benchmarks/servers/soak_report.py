"""The soak test's verdicts, its markdown summary, and the RSS plot (matplotlib, Agg backend)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Sample", "plot_rss", "render_markdown", "rss_slope", "summarise"]

# RSS "plateaus" when the fitted slope over the second half of the load phase
# would add less than this fraction of the mean RSS over that half.
PLATEAU_TOLERANCE = 0.05


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of the server process: seconds since start, RSS, and its /stats."""

    t: float
    rss_kib: int
    tasks: int | None
    fds: int | None
    subscribers: int | None
    ws_open: int | None
    server_cpu: float = 0.0  # percent of one core since the previous sample
    driver_cpu: float = 0.0  # the same for the process running the clients and proxies


def rss_slope(samples: list[Sample]) -> float:
    """Least-squares slope of RSS over ``samples``, in MiB per minute (0 for < 2 samples)."""
    if len(samples) < 2:
        return 0.0
    ts = [s.t for s in samples]
    ys = [s.rss_kib / 1024 for s in samples]
    mean_t, mean_y = sum(ts) / len(ts), sum(ys) / len(ys)
    var = sum((t - mean_t) ** 2 for t in ts)
    if var == 0:
        return 0.0
    cov = sum((t - mean_t) * (y - mean_y) for t, y in zip(ts, ys, strict=True))
    return cov / var * 60.0


def summarise(
    samples: list[Sample],
    load: tuple[float, float],
    baseline: dict[str, Any],
    after: dict[str, Any],
    tallies: dict[str, dict[str, Any]],
    settings: dict[str, Any],
) -> dict[str, Any]:
    """Every figure and verdict of a run, JSON-ready. ``load`` is (clients started, left)."""
    start, end = load
    loaded = [s for s in samples if start <= s.t <= end]
    second_half = [s for s in loaded if s.t >= (start + end) / 2]
    slope = rss_slope(second_half)
    half_minutes = (end - start) / 2 / 60
    mean_rss = sum(s.rss_kib for s in second_half) / len(second_half) / 1024 if second_half else 0
    growth = slope * half_minutes
    leaks = {key: after.get(key, 0) - baseline.get(key, 0) for key in ("tasks", "fds")}
    busy = loaded[1:] or [Sample(0, 0, None, None, None, None)]
    lost = sum(t["lost"] for t in tallies.values())
    duplicates = sum(t["duplicates"] for t in tallies.values())
    return {
        "settings": settings,
        "rss_mib": {
            "idle_before": round(samples[0].rss_kib / 1024, 1) if samples else None,
            "peak": round(max(s.rss_kib for s in samples) / 1024, 1) if samples else None,
            "end_of_load": round(loaded[-1].rss_kib / 1024, 1) if loaded else None,
            "after_clients_left": round(samples[-1].rss_kib / 1024, 1) if samples else None,
            "second_half_slope_mib_per_min": round(slope, 3),
            "second_half_growth_mib": round(growth, 2),
            "plateau": bool(second_half) and growth <= PLATEAU_TOLERANCE * mean_rss,
        },
        "cpu_percent_mean": {
            "server": round(sum(s.server_cpu for s in busy) / len(busy), 1),
            "clients_and_proxies": round(sum(s.driver_cpu for s in busy) / len(busy), 1),
        },
        "baseline": baseline,
        "after_clients_left": after,
        "leaked": leaks,
        "returned_to_baseline": all(v <= 0 for v in leaks.values()),
        "clients": tallies,
        "events_lost": lost,
        "duplicates": duplicates,
        "passed": lost == 0
        and duplicates == 0
        and all(v <= 0 for v in leaks.values())
        and bool(second_half)
        and growth <= PLATEAU_TOLERANCE * mean_rss,
    }


def render_markdown(summary: dict[str, Any], plot: Path | None) -> str:
    """A short markdown report of ``summary``."""
    rss, settings = summary["rss_mib"], summary["settings"]
    lines = [
        f"## Soak: {settings['minutes']} min, {settings['sse_clients']} SSE + "
        f"{settings['ws_clients']} WebSocket clients — {'PASS' if summary['passed'] else 'FAIL'}",
        "",
        "| check | result |",
        "|---|---|",
        f"| events lost by resuming clients | {summary['events_lost']} |",
        f"| duplicates | {summary['duplicates']} |",
        f"| RSS idle → peak → end of load → after (MiB) | {rss['idle_before']} → {rss['peak']}"
        f" → {rss['end_of_load']} → {rss['after_clients_left']} |",
        f"| RSS slope, 2nd half of load | {rss['second_half_slope_mib_per_min']} MiB/min "
        f"({'plateau' if rss['plateau'] else 'GROWING'}) |",
        f"| CPU, mean over the load: server / clients+proxies | "
        f"{summary['cpu_percent_mean']['server']} % / "
        f"{summary['cpu_percent_mean']['clients_and_proxies']} % of a core |",
        f"| tasks idle → after | {summary['baseline'].get('tasks')} → "
        f"{summary['after_clients_left'].get('tasks')} |",
        f"| fds idle → after | {summary['baseline'].get('fds')} → "
        f"{summary['after_clients_left'].get('fds')} |",
        f"| back to idle after the clients left | "
        f"{summary['after_clients_left'].get('seconds_to_idle')} s |",
        "",
        "| clients | sessions | resumes | events | lost | dup | resets | endings |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind, tally in summary["clients"].items():
        endings = ", ".join(f"{k}: {v}" for k, v in sorted(tally["endings"].items()))
        lines.append(
            f"| {kind} | {tally['sessions']} | {tally['resumes']} | {tally['events']} | "
            f"{tally['lost']} | {tally['duplicates']} | {tally['resets']} | {endings} |"
        )
    if plot is not None:
        lines += ["", f"RSS plot: `{plot}`"]
    return "\n".join(lines) + "\n"


def plot_rss(samples: list[Sample], load: tuple[float, float], path: Path, title: str) -> None:
    """RSS (and open connections) over time as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, rss_axis = plt.subplots(figsize=(10, 5), dpi=100)
    ts = [s.t for s in samples]
    rss_axis.plot(ts, [s.rss_kib / 1024 for s in samples], color="tab:blue", label="server RSS")
    rss_axis.set_xlabel("seconds")
    rss_axis.set_ylabel("RSS (MiB)", color="tab:blue")
    rss_axis.set_ylim(bottom=0)
    open_axis = rss_axis.twinx()
    connections = [(s.t, (s.subscribers or 0)) for s in samples if s.subscribers is not None]
    if connections:
        open_axis.plot(*zip(*connections, strict=True), color="tab:orange", alpha=0.6)
    # Every SSE stream has a Hub subscription; a topic's WebSocket members share one.
    open_axis.set_ylabel("Hub subscriptions", color="tab:orange")
    open_axis.set_ylim(bottom=0)
    for mark, label in zip(load, ("clients start", "clients leave"), strict=True):
        rss_axis.axvline(mark, color="grey", linestyle="--", linewidth=1)
        rss_axis.annotate(label, (mark, 0), textcoords="offset points", xytext=(4, 6))
    rss_axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
