"""Publish -> deliver through Redis: latency and throughput for subscribers in two processes.

A real redis-server (started here on a free port unless ``--redis-url`` is
given, persistence off), ``processes`` worker processes (default 2), each a Hub
on its own RedisBroker holding ``subscribers / processes`` subscriptions to one
topic, and a publisher (this process, a third Hub and broker) that publishes
``events`` events at ``rate`` per second (0: as fast as one publisher can).
Every event travels XADD -> each worker's single XREAD tail -> local fan-out
to every subscriber, exactly as between instances of an app.

Payloads follow benchmarks/CONTRACT.md: ``<seq:hex> <monotonic_ns:hex> x...``;
latency is reception ``time.monotonic_ns()`` minus the publisher's (Linux
``CLOCK_MONOTONIC`` is shared by all processes). Each subscriber checks it got
0..events-1 in order, once each; ``errors`` counts any gap, duplicate,
reordering or disconnect.

Run: ``python -m benchmarks.redis [--subscribers 1000] [--events 2000] [--rate 500]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import trio

from trio_stream.brokers import RedisBroker
from trio_stream.core import SubscriberDisconnected, Subscription, open_hub
from trio_stream.protocol import Event

TOPIC = "bench.redis"
#: Bound on one whole run (startup, publishing, draining): a hang fails, it never blocks CI.
DEADLINE = 300.0


# -- the redis-server (stopped by its pid) -------------------------------------------


def _start_redis(workdir: Path) -> tuple[subprocess.Popen[str], str]:
    program = shutil.which("redis-server")
    if program is None:
        raise SystemExit("redis-server is not on PATH (or pass --redis-url)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = [program, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly"]
    args += ["no", "--dir", str(workdir), "--logfile", ""]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for line in process.stdout:  # ends at EOF if redis exits
        if "Ready to accept connections" in line:
            # Keep draining its log so that it never blocks on a full pipe.
            threading.Thread(
                target=lambda: [None for _ in process.stdout or ()], daemon=True
            ).start()
            return process, f"redis://127.0.0.1:{port}/0"
    process.wait()
    raise SystemExit(f"redis-server did not start on port {port}")


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)


# -- a worker process: subscribers only ---------------------------------------------


async def _consume(subscription: Subscription, events: int, latencies: array[int]) -> int:
    """Receive all ``events``; record latencies; return the number of errors (0 is right)."""
    await trio.lowlevel.checkpoint()
    expected = 0
    while expected < events:
        try:
            batch = await subscription.receive_batch()
        except SubscriberDisconnected:
            return 1
        now = time.monotonic_ns()
        if not batch:
            return 1
        for event in batch:
            seq_hex, sent_hex, _ = event.data.split(" ", 2)
            if int(seq_hex, 16) != expected:
                return 1
            expected += 1
            latencies.append(now - int(sent_hex, 16))
    return 0


async def _worker(
    url: str, subscribers: int, events: int, capacity: int
) -> tuple[array[int], int]:
    latencies: array[int] = array("q")
    errors = 0
    async with open_hub(RedisBroker(url)) as hub, AsyncExitStack() as stack:
        subscriptions = [
            await stack.enter_async_context(hub.subscribe(TOPIC, capacity=capacity))
            for _ in range(subscribers)
        ]
        sys.stdout.write("READY\n")
        sys.stdout.flush()

        async def consume(subscription: Subscription) -> None:
            nonlocal errors
            errors += await _consume(subscription, events, latencies)

        async with trio.open_nursery() as nursery:
            for subscription in subscriptions:
                nursery.start_soon(consume, subscription)
    return latencies, errors


def _run_worker(url: str, subscribers: int, events: int, capacity: int, out: Path) -> None:
    latencies, errors = trio.run(_worker, url, subscribers, events, capacity)
    out.with_suffix(".lat").write_bytes(latencies.tobytes())
    out.write_text(json.dumps({"errors": errors, "received": len(latencies)}))


# -- the publisher and the harness -------------------------------------------------


def _payload(seq: int, size: int) -> str:
    header = f"{seq:x} {time.monotonic_ns():x} "
    return header + "x" * max(0, size - len(header))


async def _read_line(stream: trio.abc.ReceiveStream) -> bytes:
    await trio.lowlevel.checkpoint()
    line = b""
    while not line.endswith(b"\n"):
        chunk = await stream.receive_some(1)
        if not chunk:
            raise RuntimeError("a worker exited before it was ready")
        line += chunk
    return line


async def _publish(url: str, events: int, rate: float, size: int) -> tuple[list[int], float]:
    durations: list[int] = []
    async with open_hub(RedisBroker(url)) as hub:
        started = trio.current_time()
        for seq in range(events):
            if rate > 0:
                await trio.sleep_until(started + seq / rate)  # late events do not shift the rest
            before = time.monotonic_ns()
            await hub.publish(TOPIC, Event(_payload(seq, size)))
            durations.append(time.monotonic_ns() - before)
        return durations, trio.current_time() - started


async def _harness(args: dict[str, Any], url: str, workdir: Path) -> dict[str, Any]:
    processes, subscribers = args["processes"], args["subscribers"]
    share = [subscribers // processes + (i < subscribers % processes) for i in range(processes)]
    outs = [workdir / f"worker{i}.json" for i in range(processes)]
    workers: list[trio.Process] = []
    with trio.fail_after(DEADLINE):
        try:
            for count, out in zip(share, outs, strict=True):
                command = [sys.executable, "-m", "benchmarks.redis", "--worker", str(out)]
                command += ["--redis-url", url, "--subscribers", str(count)]
                command += ["--events", str(args["events"]), "--capacity", str(args["capacity"])]
                workers.append(await trio.lowlevel.open_process(command, stdout=subprocess.PIPE))
            for worker in workers:
                assert worker.stdout is not None
                await _read_line(worker.stdout)
            started = trio.current_time()
            publish_ns, publish_s = await _publish(
                url, args["events"], args["rate"], args["payload_bytes"]
            )
            for worker in workers:
                await worker.wait()
            elapsed = trio.current_time() - started
        finally:
            for worker in workers:
                if worker.returncode is None:
                    worker.kill()  # only our own children, by their pid
    latencies: array[int] = array("q")
    errors = 0
    for out in outs:
        report = json.loads(out.read_text())
        errors += report["errors"]
        latencies.frombytes(out.with_suffix(".lat").read_bytes())
    return _summary(args, sorted(latencies), sorted(publish_ns), publish_s, elapsed, errors)


def _ms(values: list[int], fraction: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(fraction * len(values)))] / 1e6


def _summary(
    args: dict[str, Any],
    latencies: list[int],
    publish_ns: list[int],
    publish_s: float,
    elapsed: float,
    errors: int,
) -> dict[str, Any]:
    expected = args["subscribers"] * args["events"]
    return {
        **args,
        "deliveries": len(latencies),
        "errors": errors + (expected - len(latencies)),
        "duration_s": round(elapsed, 3),
        "published_per_s": round(args["events"] / publish_s, 1),
        "delivered_per_s": round(len(latencies) / elapsed, 1),
        "latency_ms": {q: round(_ms(latencies, f), 2) for q, f in _QUANTILES.items()},
        "publish_ms": {q: round(_ms(publish_ns, f), 3) for q, f in _QUANTILES.items()},
    }


_QUANTILES = {"p50": 0.50, "p90": 0.90, "p99": 0.99, "max": 1.0}


def run(
    *,
    subscribers: int = 1000,
    processes: int = 2,
    events: int = 2000,
    rate: float = 500.0,
    payload_bytes: int = 64,
    capacity: int = 4096,
    redis_url: str | None = None,
) -> dict[str, Any]:
    """One measurement; returns its figures (see the module docstring).

    ``capacity`` is each subscriber's queue (``Overflow.DISCONNECT``): 4096
    lets a flat-out run (``rate=0``) finish without disconnecting a subscriber
    that lags while the machine is busy; a disconnect counts as an error.
    ``latency_ms`` is publish -> delivery to a subscriber task (p50/p90/p99/max
    over every delivery), ``delivered_per_s`` is deliveries over wall time
    from the first publish to the last worker finishing, ``publish_ms`` is the
    time one ``hub.publish`` (one XADD round trip) took.
    """
    if subscribers < processes or processes < 1 or events < 1:
        raise ValueError("need events >= 1 and subscribers >= processes >= 1")
    args = {
        "subscribers": subscribers,
        "processes": processes,
        "events": events,
        "rate": rate,
        "payload_bytes": payload_bytes,
        "capacity": capacity,
    }
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as tmp:
        workdir = Path(tmp)
        server = None
        if redis_url is None:
            server, redis_url = _start_redis(workdir)
        try:
            return trio.run(_harness, args, redis_url, workdir)
        finally:
            if server is not None:
                _stop(server)


def to_markdown(result: dict[str, Any]) -> str:
    """Render one :func:`run` result as a markdown table row with its header."""
    lat, pub = result["latency_ms"], result["publish_ms"]
    rate = "max" if result["rate"] <= 0 else f"{result['rate']:,.0f}/s"
    return "\n".join(
        [
            "| subscribers (processes) | events | rate | delivered / s | latency p50 / p99 ms "
            "| publish p50 / p99 ms | errors |",
            "|---|---:|---:|---:|---:|---:|---:|",
            f"| {result['subscribers']:,} ({result['processes']}) | {result['events']:,} "
            f"| {rate} | {result['delivered_per_s']:,.0f} | {lat['p50']} / {lat['p99']} "
            f"| {pub['p50']} / {pub['p99']} | {result['errors']} |",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: ``python -m benchmarks.redis`` (``--json`` for raw figures)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=500.0, help="events/s; 0 = flat out")
    parser.add_argument("--payload-bytes", type=int, default=64)
    parser.add_argument("--capacity", type=int, default=4096)
    parser.add_argument("--redis-url")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        assert args.redis_url, "a worker needs --redis-url"
        _run_worker(args.redis_url, args.subscribers, args.events, args.capacity, args.worker)
        return
    result = run(
        subscribers=args.subscribers,
        processes=args.processes,
        events=args.events,
        rate=args.rate,
        payload_bytes=args.payload_bytes,
        capacity=args.capacity,
        redis_url=args.redis_url,
    )
    print(json.dumps(result, indent=2) if args.json else to_markdown(result))
    if result["errors"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
