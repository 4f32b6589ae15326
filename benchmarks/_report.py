"""Turning run results into medians, ratios, target checks and the README table."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._scenarios import SERVERS, Scenario, ServerSpec
from ._steal import NOISY_SHARE
from ._uncertainty import CONFIDENCE, compare, events_of

__all__ = [
    "BEGIN",
    "END",
    "Cell",
    "is_broken",
    "machine",
    "render",
    "summarise",
    "update_readme",
    "versions",
]

BEGIN = "<!-- benchmark-results:begin (written by python -m benchmarks) -->"
END = "<!-- benchmark-results:end -->"

_PACKAGES = (
    "trio-stream", "trio", "hypercorn", "uvicorn", "uvloop", "httptools", "starlette",
    "sse-starlette", "anyio", "websockets", "trio-websocket", "wsproto", "h11", "psutil",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Metric:
    """One figure shown in the table: which result key, and whether higher is better."""

    scenario: str
    key: str
    heading: str
    higher_is_better: bool
    scale: float = 1.0


METRICS = (
    Metric("A", "events_per_s", "A events/s", True),
    Metric("B", "latency_p50_ms", "B p50 ms", False),
    Metric("B", "latency_p99_ms", "B p99 ms", False),
    Metric("C", "rss_per_connection", "C KiB/conn", False, 1 / 1024),
    Metric("D", "events_per_s", "D events/s", True),
)


@dataclass(frozen=True, slots=True)
class Cell:
    """The median of one metric over the repetitions of one server, with its flags."""

    value: float | None
    runs: int
    incomplete: int  # runs that timed out or did not deliver everything
    broken: int  # runs that violated the contract (order, loss, errors)


def is_broken(run: dict[str, Any]) -> bool:
    """Whether ``run`` broke the contract (loss, reordering, an error)."""
    return bool(run.get("order_errors") or run.get("failures") or run.get("error"))


_CPU_KEYS = (
    "server_cpu_share",
    "client_cpu_share",
    "server_cpu_us_per_event",
    "client_cpu_us_per_event",
)


def summarise(runs: Sequence[dict[str, Any]]) -> dict[str, dict[str, Cell]]:
    """``{server: {metric heading: Cell}}``, medians over repetitions.

    Rows also hold the CPU figures of scenarios A, B and D under
    ``"<scenario>:<result key>"`` (e.g. ``"A:server_cpu_us_per_event"``).
    """
    table: dict[str, dict[str, Cell]] = {}
    for server in {run["server"] for run in runs}:
        row: dict[str, Cell] = {}
        for metric in METRICS:
            mine = [r for r in runs if r["server"] == server and r["scenario"] == metric.scenario]
            if not mine:
                continue
            values = [r[metric.key] * metric.scale for r in mine if metric.key in r]
            row[metric.heading] = Cell(
                value=statistics.median(values) if values else None,
                runs=len(mine),
                incomplete=sum(not r.get("complete") for r in mine),
                broken=sum(is_broken(r) for r in mine),
            )
        for scenario in "ABD":
            mine = [r for r in runs if r["server"] == server and r["scenario"] == scenario]
            for key in _CPU_KEYS:
                found = [r[key] for r in mine if key in r]
                if found:
                    row[f"{scenario}:{key}"] = Cell(statistics.median(found), len(mine), 0, 0)
        table[server] = row
    return table


def _format(value: float, heading: str) -> str:
    if "events/s" in heading:
        return f"{value / 1000:.1f}k" if value >= 1000 else f"{value:.0f}"
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def _ratio(cell: Cell, base: Cell | None, higher_is_better: bool) -> str:
    # Always "how many times better trio_stream is": > 1 favours trio_stream.
    if base is None or base.value is None or cell.value is None or not cell.value:
        return ""
    if not base.value:
        return ""
    ratio = base.value / cell.value if higher_is_better else cell.value / base.value
    return f" ({ratio:.2f}x)"


def _cell_text(cell: Cell | None, base: Cell | None, metric: Metric, is_base: bool) -> str:
    if cell is None:
        return "-"
    if cell.value is None:
        return "failed"
    text = _format(cell.value, metric.heading)
    if not is_base:
        text += _ratio(cell, base, metric.higher_is_better)
    if cell.broken:
        text += f" ✗{cell.broken}/{cell.runs}"
    elif cell.incomplete:
        text += f" DNF {cell.incomplete}/{cell.runs}"
    return text


def _pair(row: dict[str, Cell], scenario: str, kind: str, base: dict[str, Cell] | None) -> str:
    server = row.get(f"{scenario}:server_cpu_{kind}")
    client = row.get(f"{scenario}:client_cpu_{kind}")
    if server is None or client is None or server.value is None or client.value is None:
        return "-"
    if kind == "share":
        return f"{server.value:.0%} / {client.value:.0%}"
    # The client's CPU per event is left out: it mostly measures how often an
    # idle client is woken up, not a cost.
    text = f"{server.value:.1f}"
    if base is not None:
        text += _ratio(server, base.get(f"{scenario}:server_cpu_{kind}"), higher_is_better=False)
    return text


def _targets(table: dict[str, dict[str, Cell]]) -> list[tuple[str, str]]:
    sse, ws = "trio_stream_sse", "trio_stream_ws"

    def figure(server: str, heading: str) -> float | None:
        found = table.get(server, {}).get(heading)
        return None if found is None else found.value

    def unfinished(server: str, heading: str) -> bool:
        found = table.get(server, {}).get(heading)
        return found is not None and bool(found.incomplete or found.broken)

    def check(name: str, ok: bool | None, *used: tuple[str, str]) -> tuple[str, str]:
        if ok is None:
            return name, "n/a"
        result = "pass" if ok else "**FAIL**"
        unsure = [server for server, heading in used if unfinished(server, heading)]
        if unsure:
            result += f" (from unfinished runs of {', '.join(unsure)})"
        return name, result

    def at_least(mine: str, peer: str, heading: str, factor: float) -> tuple[str, str]:
        a, b = figure(mine, heading), figure(peer, heading)
        ok = None if a is None or not b else a / b >= factor
        name = f"{'SSE' if mine == sse else 'WS'} {heading[0]} ≥ {factor:g}x {peer}"
        return check(name, ok, (mine, heading), (peer, heading))

    def at_most(server: str, heading: str, limit: float) -> tuple[str, str]:
        value = figure(server, heading)
        name = f"{'SSE' if server == sse else 'WS'} C ≤ {limit:g} KiB per connection"
        return check(name, None if value is None else value <= limit, (server, heading))

    p99 = figure(sse, "B p99 ms")
    best = _best_latency_peer(table)
    best_p99 = figure(best, "B p99 ms") if best else None
    p99_ok = None if p99 is None or best_p99 is None else p99 <= best_p99
    uvicorn, hypercorn = "uvicorn_sse_starlette", "hypercorn_sse_starlette"
    return [
        at_least(sse, uvicorn, "A events/s", 1.2),
        at_least(sse, hypercorn, "A events/s", 7),
        check(f"SSE B p99 no worse than any peer (best: {best or '-'})", p99_ok,
              (sse, "B p99 ms"), (best, "B p99 ms")),
        at_most(sse, "C KiB/conn", 30),
        at_least(sse, uvicorn, "D events/s", 1.3),
        at_least(ws, "trio_websocket_channels", "A events/s", 2),
        at_most(ws, "C KiB/conn", 25),
    ]  # fmt: skip


def _best_latency_peer(table: dict[str, dict[str, Cell]]) -> str:
    """The peer with the lowest B p99 (median over repetitions), or ``""``."""
    peers = {
        server: cell.value
        for server, row in table.items()
        if server not in ("trio_stream_sse", "trio_stream_ws")
        and (cell := row.get("B p99 ms")) is not None
        and cell.value is not None
    }
    return min(peers, key=peers.__getitem__) if peers else ""


def _latency_spread(runs: Sequence[dict[str, Any]], peer: str) -> tuple[str, str] | None:
    """The B p99 target's row read with its uncertainty (see ``_uncertainty``)."""
    ours, theirs = (
        [
            events
            for r in runs
            if r["server"] == name and r["scenario"] == "B"
            if (events := events_of(r))
        ]
        for name in ("trio_stream_sse", peer)
    )
    if not ours or not theirs:
        return None
    found = compare(ours, theirs)
    name = (
        f"SSE B p99 against {peer}, with {CONFIDENCE:.0%} intervals "
        "(bootstrap over repetitions and events)"
    )
    meaning = {
        "level": "level: the difference is within the noise",
        "better": "measurably better",
        "worse": "**measurably worse**",
    }[found.verdict]
    return name, f"{found.ours} vs {found.theirs} ms; difference {found.difference} ms: {meaning}"


def render(
    runs: Sequence[dict[str, Any]],
    *,
    scenarios: dict[str, Scenario],
    servers: Sequence[ServerSpec],
    unavailable: dict[str, str],
    inproc: dict[str, dict[str, Any]],
    meta: dict[str, Any],
) -> str:
    """The markdown results section: tables, target checks, environment."""
    table = summarise(runs)
    by_name = {s.name: s for s in SERVERS}
    quick = ", QUICK MODE: tiny counts, not figures to quote" if meta["quick"] else ""
    lines = [
        f"Measured {meta['date']} in {meta['elapsed_s']:.0f} s "
        f"({meta['reps']} repetitions, median shown{quick})."
    ]
    lines += ["", "| server | " + " | ".join(m.heading for m in METRICS) + " |"]
    lines.append("|---|" + "---|" * len(METRICS))
    for server in servers:
        if server.name in unavailable:
            lines.append(f"| {server.label} | not available |" + " |" * (len(METRICS) - 1))
            continue
        row = table.get(server.name, {})
        base_row = table.get(server.baseline, {})
        cells = [
            _cell_text(
                row.get(m.heading), base_row.get(m.heading), m, server.name == server.baseline
            )
            for m in METRICS
        ]
        lines.append(f"| {server.label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Ratios (in brackets) compare with trio_stream on the same transport and read as "
        "*how many times better trio_stream is* (> 1 favours trio_stream). "
        "✗ n/m: n of m runs broke the contract (loss, reordering, errors); "
        "DNF n/m: n runs hit their deadline (the figure counts what arrived).",
        "",
        "Scenarios: " + "; ".join(f"**{s.key}** {s.describe()}" for s in scenarios.values()) + ".",
        "",
        "CPU over the measured window: the share of its core used by the server / by the "
        "client (a server near 100% with a client well below it means the server was "
        "measured), and the server's CPU microseconds per delivered event (less "
        "sensitive than rates to other work on the machine; the ratio compares it with "
        "trio_stream's):",
        "",
        "| server | A share | B share | D share | A server us/event | D server us/event |",
        "|---|---|---|---|---|---|",
    ]
    for server in servers:
        if server.name in unavailable:
            continue
        row = table.get(server.name, {})
        base = table.get(server.baseline, {})
        cells = [_pair(row, key, "share", None) for key in "ABD"]
        is_base = server.name == server.baseline
        cells += [_pair(row, key, "us_per_event", None if is_base else base) for key in "AD"]
        lines.append(f"| {server.label} | " + " | ".join(cells) + " |")
    lines += ["", _steal_text(runs)]
    caveat = " (quick mode: not meaningful)" if meta["quick"] else ""
    lines += ["", f"Targets (issue “Benchmarks”){caveat}:", "", "| target | result |", "|---|---|"]
    targets = _targets(table)
    spread = _latency_spread(runs, _best_latency_peer(table))
    if spread is not None:  # right under the B p99 target it qualifies
        below = next(i for i, (name, _) in enumerate(targets) if name.startswith("SSE B p99"))
        targets.insert(below + 1, spread)
    lines += [f"| {name} | {result} |" for name, result in targets]
    for name, reason in unavailable.items():
        label = by_name[name].label if name in by_name else name
        lines.append(f"\nNot available: {label}: `{reason}`.")
    if inproc:
        lines += [
            "",
            "In-process benchmarks:",
            "",
            "| benchmark | figure | value |",
            "|---|---|---|",
        ]
        for name, result in inproc.items():
            for key, value in _flatten(result):
                lines.append(f"| {name} | {key} | {value} |")
    lines += ["", "Environment:", ""]
    lines += [f"- {key}: {value}" for key, value in meta["machine"].items()]
    lines.append("- versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()))
    return "\n".join(lines) + "\n"


def _steal_text(runs: Sequence[dict[str, Any]]) -> str:
    # Idle connections (C) are not run again: memory does not depend on it.
    runs = [run for run in runs if run.get("scenario") != "C"]
    shares = [run["steal_share"] for run in runs if run.get("steal_share") is not None]
    if not shares:
        return "The hypervisor's steal time was not recorded (no /proc/stat)."
    again = sum(run.get("attempts", 1) - 1 for run in runs)
    noisy = [run for run in runs if (run.get("steal_share") or 0) > NOISY_SHARE]
    text = (
        "Time the hypervisor took from the pinned cores during the measured windows "
        f"(steal): median {statistics.median(shares):.1%}, at most {max(shares):.1%} "
        f"of a core; {again} repetitions were run again because it took more than "
        f"{NOISY_SHARE:.0%}"
    )
    if not noisy:
        return text + "."
    counts = ", ".join(
        f"{key} {sum(run['scenario'] == key for run in noisy)} of "
        f"{sum(run['scenario'] == key for run in runs)}"
        for key in sorted({run["scenario"] for run in noisy})
    )
    return (
        text + f"; still above it after the retries: {counts} repetitions "
        "(`steal_share` in the raw results names them)."
    )


def _flatten(result: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    for key, value in result.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            items += _flatten(value, f"{name}.")
        elif isinstance(value, list | tuple):
            continue  # raw samples: kept in the JSON results, too long for a table
        elif isinstance(value, float):
            items.append((name, f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"))
        elif isinstance(value, str):
            text = value if value.isprintable() else repr(value)
            items.append((name, text.replace("|", "\\|")))
        else:
            items.append((name, str(value)))
    return items


def update_readme(path: Path, section: str) -> None:
    """Replace the text between the markers in ``path`` (append the markers if missing)."""
    text = path.read_text() if path.exists() else ""
    block = f"{BEGIN}\n{section}{END}"
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n## Results\n\n" + block + "\n"
    path.write_text(text)


def versions() -> dict[str, str]:
    """Python and the installed version of every package that matters to the figures."""
    found = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def machine(pinning: str) -> dict[str, str]:
    """CPU model, cores, kernel, ``pinning`` (in words) and load: what figures depend on."""
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()
    return {
        "CPU": f"{model}, {os.cpu_count()} cores",
        "OS": f"{platform.system()} {platform.release()}",
        "pinning": pinning,
        "load average at the end": ", ".join(f"{x:.2f}" for x in load),
    }
