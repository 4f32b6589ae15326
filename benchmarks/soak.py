"""Soak test: many misbehaving SSE and WebSocket clients against one server process, for minutes.

    python -m benchmarks.soak --minutes 5 --sse-clients 1000 --ws-clients 200

The server (``benchmarks/servers/soak_server.py``: ``serve`` + ``hub_endpoint``
+ ``serve_websockets`` on one Hub, with a publisher) runs in its own process.
This process runs the clients (``benchmarks/servers/soak_clients.py``): they
disconnect at random and resume, read slowly, freeze, and connect either
directly or through ``FaultProxy`` instances that cut connections, add
latency, or stall. It records:

* events lost (and duplicated) by resuming clients: must be 0 while history
  covers the gap (resets, when it does not, are counted apart);
* the server's RSS over time (``/proc/<pid>/status``): must plateau;
* the server's trio tasks and file descriptors once every client left
  (its ``/stats``): must return to the idle baseline.

Writes ``benchmarks/results/soak-<time>.{json,md,png}`` and prints the
markdown. Exits 1 when a check fails. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import asdict
from pathlib import Path
from typing import Any

import trio

from trio_stream.testing import FaultProxy

from .servers.soak_clients import (
    Pace,
    Plan,
    Route,
    Tally,
    Track,
    run_client,
    sse_session,
    topic_of,
    ws_session,
)
from .servers.soak_report import Sample, plot_rss, render_markdown, summarise

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS line")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _fd_count(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


async def fetch_stats(port: int, *, stacks: bool = False) -> dict[str, Any]:
    """The server's ``GET /stats`` JSON (HTTP/1.0, a fresh connection each time)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        target = "/stats?stacks" if stacks else "/stats"
        await stream.send_all(f"GET {target} HTTP/1.0\r\nHost: soak\r\n\r\n".encode())
        raw = b""
        while chunk := await stream.receive_some(65536):
            raw += chunk
    stats: dict[str, Any] = json.loads(raw.partition(b"\r\n\r\n")[2])
    return stats


@asynccontextmanager
async def server_process(args: argparse.Namespace) -> AsyncIterator[tuple[int, dict[str, int]]]:
    """Start the soak server; yield its pid and ports; SIGTERM it (then SIGKILL) at the end."""
    command = [
        sys.executable, "-m", "benchmarks.servers.soak_server",
        "--topics", str(args.topics), "--rate", str(args.rate),
        "--payload", str(args.payload), "--history", str(args.history),
        "--capacity", str(args.capacity), "--send-timeout", str(args.send_timeout),
    ]  # fmt: skip
    with open(args.stem.with_name(args.stem.name + "-server.log"), "wb") as log:  # noqa: ASYNC230  once, before the load
        process = await trio.lowlevel.open_process(command, stdout=-1, stderr=log, cwd=ROOT)
    try:
        assert process.stdout is not None
        line = b""
        with trio.fail_after(30):
            while not line.endswith(b"\n"):
                chunk = await process.stdout.receive_some(1)
                if not chunk:
                    raise RuntimeError("the soak server exited before it was ready")
                line += chunk
        ready = json.loads(line)
        yield process.pid, ready
    finally:
        process.send_signal(signal.SIGTERM)
        with trio.move_on_after(20) as scope:
            scope.shield = True
            await process.wait()
        if process.returncode is None:
            process.kill()


async def _poll_stats(port: int, latest: dict[str, Any], interval: float) -> None:
    # Apart from the RSS sampler: under load /stats can take seconds to answer.
    while True:
        with suppress(OSError):
            latest.update(await fetch_stats(port))
        await trio.sleep(interval)


async def _sample(
    pid: int, port: int, start: float, samples: list[Sample], interval: float
) -> None:
    """Every ``interval`` s: RSS from /proc (never late), with the latest /stats figures."""
    latest: dict[str, Any] = {}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_poll_stats, port, latest, interval)
        next_time = trio.current_time()
        pids = (pid, os.getpid())
        previous = (next_time, *map(_cpu_seconds, pids))
        while True:
            now, server_cpu, driver_cpu = trio.current_time(), *map(_cpu_seconds, pids)
            elapsed = max(now - previous[0], 1e-9)
            samples.append(
                Sample(
                    t=round(now - start, 2),
                    rss_kib=_rss_kib(pid),
                    tasks=latest.get("tasks"),
                    fds=_fd_count(pid),
                    subscribers=latest.get("subscribers"),
                    ws_open=latest.get("ws_open"),
                    server_cpu=round(100 * (server_cpu - previous[1]) / elapsed, 1),
                    driver_cpu=round(100 * (driver_cpu - previous[2]) / elapsed, 1),
                )
            )
            previous = (now, server_cpu, driver_cpu)
            next_time += interval
            await trio.sleep_until(next_time)


async def _stall_now_and_then(proxies: list[FaultProxy], every: float, length: float) -> None:
    while True:
        await trio.sleep(every)
        for proxy in proxies:
            proxy.stalled = True
        await trio.sleep(length)
        for proxy in proxies:
            proxy.stalled = False


async def _start_proxies(
    nursery: trio.Nursery, ports: dict[str, int], args: argparse.Namespace
) -> tuple[list[Route], dict[str, list[FaultProxy]]]:
    await trio.lowlevel.checkpoint()
    faults: dict[str, dict[str, Any]] = {
        "proxy": {},
        "proxy-cut": {"cut_after_seconds": args.cut_after},
        "proxy-delay": {"delay": 0.05},
        "proxy-stall": {},
    }
    routes = [Route("direct", ports["http_port"], ports["ws_port"])]
    proxies: dict[str, list[FaultProxy]] = {}
    for name, options in faults.items():
        http = FaultProxy("127.0.0.1", ports["http_port"], **options)
        ws = FaultProxy("127.0.0.1", ports["ws_port"], **options)
        routes.append(Route(name, await nursery.start(http.serve), await nursery.start(ws.serve)))
        proxies[name] = [http, ws]
    nursery.start_soon(_stall_now_and_then, proxies["proxy-stall"], 20.0, 3.0)
    return routes, proxies


async def _wait_idle(port: int, baseline: dict[str, Any], bound: float) -> dict[str, Any]:
    """Poll /stats until the server is back to ``baseline`` (at most ``bound`` s).

    Back means: no subscriber, no WebSocket, and no more tasks or file
    descriptors than when idle. Connections being torn down (a close
    handshake, a WebSocket handshake the client abandoned) take a few seconds:
    ``seconds_to_idle`` says how long; still above the baseline after
    ``bound`` is a leak.
    """
    start = trio.current_time()
    with trio.move_on_after(bound):
        while True:
            stats = await fetch_stats(port)
            idle = not (stats["subscribers"] or stats["ws_open"])
            if idle and all(stats[k] <= baseline[k] for k in ("tasks", "fds")):
                break
            await trio.sleep(0.5)
    stats["seconds_to_idle"] = round(trio.current_time() - start, 1)
    if stats["seconds_to_idle"] >= bound:  # not back: record where every task waits
        stats["stacks"] = (await fetch_stats(port, stacks=True))["stacks"]
    return stats


async def _warm_up(ports: dict[str, int]) -> dict[str, Any]:
    """One SSE and one WebSocket session, then the idle baseline.

    The first response of each kind creates what lives as long as the server
    (e.g. the one task that watches for shutdown for every SSE response): the
    baseline must include those.
    """
    route = Route("warm-up", ports["http_port"], ports["ws_port"])
    pace = Pace("normal", random.Random(0), (0.0, 0.0))
    for session in (sse_session, ws_session):
        with trio.move_on_after(1.0):
            await session(route, topic_of(0, 1), Track(), Tally(), pace)
    with trio.fail_after(30):
        while True:
            stats = await fetch_stats(ports["http_port"])
            if not (stats["subscribers"] or stats["ws_open"]):
                return stats
            await trio.sleep(0.2)


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    """Run the whole soak; return the summary."""
    samples: list[Sample] = []
    tallies = {"sse": Tally(), "ws": Tally()}
    async with server_process(args) as (pid, ports), trio.open_nursery() as nursery:
        start = trio.current_time()
        baseline = await _warm_up(ports)
        nursery.start_soon(_sample, pid, ports["http_port"], start, samples, args.sample_interval)
        routes, proxies = await _start_proxies(nursery, ports, args)
        plan = Plan(args.mean_session, (args.freeze_min, args.freeze_max), routes, args.seed)
        load_start = trio.current_time() - start
        total = args.sse_clients + args.ws_clients
        ramp = min(20.0, args.minutes * 6.0) / max(total, 1)
        async with trio.open_nursery() as clients:
            clients.cancel_scope.deadline = trio.current_time() + args.minutes * 60
            for i in range(total):
                kind = "sse" if i < args.sse_clients else "ws"
                topic = topic_of(i, args.topics)
                clients.start_soon(run_client, kind, i, topic, plan, tallies[kind])
                await trio.sleep(ramp)
        load_end = trio.current_time() - start
        after = await _wait_idle(ports["http_port"], baseline, bound=60.0)
        await trio.sleep(args.sample_interval * 2)  # a few idle RSS samples after the load
        nursery.cancel_scope.cancel()
    settings = {
        key: getattr(args, key)
        for key in ("minutes", "sse_clients", "ws_clients", "topics", "rate", "payload")
    } | {"history": args.history, "capacity": args.capacity, "seed": args.seed}
    settings["proxies"] = {
        name: {"connections": sum(p.connections for p in pair), "cuts": sum(p.cuts for p in pair)}
        for name, pair in proxies.items()
    }
    return _finish(args.stem, samples, (load_start, load_end), baseline, after, tallies, settings)


def _finish(
    stem: Path,
    samples: list[Sample],
    load: tuple[float, float],
    baseline: dict[str, Any],
    after: dict[str, Any],
    tallies: dict[str, Tally],
    settings: dict[str, Any],
) -> dict[str, Any]:
    keep = ("tasks", "fds", "subscribers", "ws_open", "hub_disconnected", "ws_closed")
    keep_after = (*keep, "seconds_to_idle")
    names_before, names_after = baseline.get("task_names", {}), after.get("task_names", {})
    extra_tasks = {
        name: count - names_before.get(name, 0)
        for name, count in names_after.items()
        if count > names_before.get(name, 0)
    }
    summary = summarise(
        samples,
        load,
        {k: baseline.get(k) for k in keep},
        {k: after.get(k) for k in keep_after},
        {kind: tally.as_dict() for kind, tally in tallies.items()},
        settings,
    )
    summary["tasks_left_over"] = extra_tasks
    summary["stacks_when_not_idle"] = after.get("stacks", {})
    png = stem.with_suffix(".png")
    title = f"trio_stream soak: {settings['sse_clients']} SSE + {settings['ws_clients']} WS"
    plot_rss(samples, load, png, title)
    markdown = render_markdown(summary, png.relative_to(ROOT))
    summary["samples"] = [asdict(sample) for sample in samples]
    stem.with_suffix(".json").write_text(json.dumps(summary, indent=2))
    stem.with_suffix(".md").write_text(markdown)
    print(markdown)
    return summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The soak's options."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add = parser.add_argument
    add("--minutes", type=float, default=5.0, help="how long the clients run")
    add("--sse-clients", type=int, default=1000)
    add("--ws-clients", type=int, default=200)
    add("--topics", type=int, default=4)
    add("--rate", type=float, default=2.0, help="events/s per topic")
    add("--payload", type=int, default=512, help="padding bytes per event")
    add("--history", type=int, default=200, help="events kept per topic (100 s at 2/s)")
    add("--capacity", type=int, default=16, help="server-side queue per subscriber")
    add("--send-timeout", type=float, default=5.0, help="server: frozen reader cut-off (s)")
    add("--mean-session", type=float, default=30.0, help="mean seconds before a disconnect")
    add("--freeze-min", type=float, default=20.0, help="shortest freeze of a frozen reader")
    add("--freeze-max", type=float, default=45.0, help="longest freeze of a frozen reader")
    add("--cut-after", type=float, default=15.0, help="the cutting proxy's connection life")
    add("--sample-interval", type=float, default=2.0, help="seconds between RSS samples")
    add("--seed", type=int, default=1)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the soak; 0 when every check passed."""
    args = parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    args.stem = RESULTS / f"soak-{time.strftime('%Y%m%d-%H%M%S')}"
    _raise_fd_limit()
    summary = trio.run(soak, args)
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
