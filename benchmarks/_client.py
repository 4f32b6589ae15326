"""The load client: one process, raw asyncio protocols on uvloop, minimal parsing.

Run by the harness as ``python -m benchmarks._client`` with a JSON job on stdin;
prints one JSON result on stdout. It opens the subscribers, triggers the
server's publisher through the control channel (CONTRACT.md), checks every
subscriber's sequence numbers, and measures throughput, latency, the server's
RSS and both processes' CPU time. Every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil
import uvloop

from ._control import Control
from ._steal import read_steal
from ._subscriber import Phase, Subscriber
from ._wire import http_request, websocket_request
from .servers._contract import Broadcast

_POLL_INTERVAL = 0.005
_POLL_INTERVAL_MAX = 0.1


@dataclass(frozen=True)
class Job:
    """What to run; built by the harness from a scenario."""

    host: str
    port: int
    server_pid: int
    transport: str  # "sse" or "ws"
    mode: str  # "stream" (A, B, D) or "idle" (C)
    connections: int
    count: int
    size: int
    rate: float
    latency: bool
    deadline: float  # seconds for the measured broadcast
    connect_deadline: float  # seconds to open the subscribers (and measure RSS)
    warmup: int = 0
    settle: float = 0.5  # seconds to let the server settle before reading its RSS
    connect_batch: int = 100


class Run:
    """One job: connect, trigger, receive, measure."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.control = Control(job.host, job.port, job.transport == "ws")
        self.subscribers: list[Subscriber] = []
        self.server = psutil.Process(job.server_pid)
        self.result: dict[str, Any] = {"phase": "connect"}
        # Start of the measured window: monotonic ns, server and client CPU seconds.
        self.window: tuple[int, float, float] | None = None
        self.current: Phase | None = None  # the broadcast being received
        self.steal: dict[str, float] = {}  # each core's steal at the window's start

    async def connect(self, count: int) -> None:
        """Open ``count`` more subscribers in batches; wait until the server registered them."""
        loop = asyncio.get_running_loop()
        websocket = self.job.transport == "ws"
        request = (
            websocket_request("/ws", self.control.host)
            if websocket
            else http_request("GET", "/sse", self.control.host, close=False)
        )
        baseline = await self.control.subscribers()
        opened = 0
        while opened < count:
            batch = min(self.job.connect_batch, count - opened)
            results = await asyncio.gather(
                *(
                    loop.create_connection(
                        lambda: Subscriber(request, websocket), self.job.host, self.job.port
                    )
                    for _ in range(batch)
                )
            )
            self.subscribers.extend(protocol for _, protocol in results)
            opened += batch
            # The count lives in the server process: polling is the only way.
            # Back off, so that answering polls (O(subscribers) for some
            # servers) does not become the server's main work.
            interval = _POLL_INTERVAL
            while await self.control.subscribers() < baseline + opened:  # noqa: ASYNC110
                self.check_subscribers()  # a refused stream will never be counted
                await asyncio.sleep(interval)
                interval = min(interval * 2, _POLL_INTERVAL_MAX)
        self.check_subscribers()

    def check_subscribers(self) -> None:
        """Raise ``RuntimeError`` if a subscriber was refused or lost."""
        failures = [s.failure for s in self.subscribers if s.failure]
        if failures:
            raise RuntimeError(f"{len(failures)} subscribers failed: {failures[0]}")

    async def receive_broadcast(self, spec: Broadcast, record_latency: bool) -> Phase:
        phase = Phase(target=spec.count, subscribers=len(self.subscribers))
        phase.record_latency = record_latency
        for subscriber in self.subscribers:
            subscriber.start_phase(phase)
        self.result["phase"] = "broadcast"
        self.current = phase
        await self.control.broadcast(spec)
        if spec.count and phase.subscribers:
            await phase.done.wait()
        return phase

    def cpu(self) -> tuple[float, float]:
        """CPU seconds used so far by the server and by this client."""
        return _process_cpu(self.server), time.process_time()

    def record_phase(self, phase: Phase, start: int, server_cpu: float, client_cpu: float) -> None:
        end_server_cpu, end_client_cpu = self.cpu()
        end = time.monotonic_ns()
        steal = read_steal()
        self.result["steal_s"] = {
            core: steal[core] - before for core, before in self.steal.items() if core in steal
        }
        wall = (end - start) / 1e9
        first = phase.first_send_ns or start
        last = phase.last_receive_ns or end
        span = max(last - first, 1) / 1e9
        failures = [s.failure for s in self.subscribers if s.failure]
        complete = phase.complete >= phase.subscribers and not phase.errors and not failures
        self.result.update(
            complete=complete,
            delivered=phase.delivered,
            expected=phase.target * phase.subscribers,
            order_errors=phase.errors,
            failures=len(failures),
            first_failure=failures[0] if failures else "",
            span_s=span,
            events_per_s=phase.delivered / span,
            wall_s=wall,
            server_cpu_s=end_server_cpu - server_cpu,
            client_cpu_s=end_client_cpu - client_cpu,
            server_cpu_share=(end_server_cpu - server_cpu) / wall,
            client_cpu_share=(end_client_cpu - client_cpu) / wall,
        )
        if phase.delivered:
            # CPU cost per delivered event: much less sensitive than a rate to
            # other work sharing the machine (CPU time is only counted while
            # the process runs).
            per_event = 1e6 / phase.delivered
            self.result["server_cpu_us_per_event"] = (end_server_cpu - server_cpu) * per_event
            self.result["client_cpu_us_per_event"] = (end_client_cpu - client_cpu) * per_event
        if phase.latencies:
            latencies = sorted(phase.latencies)
            n = len(latencies)
            self.result.update(
                latency_samples=n,
                latency_p50_ms=latencies[n // 2] / 1e6,
                latency_p99_ms=latencies[min(n - 1, (n * 99) // 100)] / 1e6,
                latency_max_ms=latencies[-1] / 1e6,
                latency_by_event_us=by_event(phase.latency_events, phase.latencies),
            )

    async def timed_connect(self, count: int) -> None:
        """:meth:`connect`, recording how long it took and the server's CPU time."""
        started, server_cpu, _ = time.monotonic(), *self.cpu()
        await self.connect(count)
        self.result["connect_s"] = time.monotonic() - started
        self.result["connect_server_cpu_s"] = self.cpu()[0] - server_cpu

    async def prepare(self) -> None:
        """Open the subscribers (and, for RSS, measure around opening them)."""
        job = self.job
        if job.transport == "ws":
            await self.control.open()
        if job.mode == "stream":
            await self.timed_connect(job.connections)
            return
        # Warm-up subscribers get one event first, so that code paths used once
        # (lazy imports, first allocations) are paid before the "before" RSS.
        await self.connect(job.warmup)
        await self.receive_broadcast(Broadcast(count=1, size=job.size, rate=0), False)
        await asyncio.sleep(job.settle)
        before = self.server.memory_info().rss
        await self.timed_connect(job.connections)
        await asyncio.sleep(job.settle)
        after = self.server.memory_info().rss
        self.result.update(
            rss_before=before,
            rss_after=after,
            rss_per_connection=(after - before) / job.connections,
        )

    async def measure(self) -> None:
        """The measured broadcast (for RSS runs: one event, proving every connection alive)."""
        job = self.job
        if job.mode == "stream":
            spec = Broadcast(count=job.count, size=job.size, rate=job.rate)
        else:
            spec = Broadcast(count=1, size=job.size, rate=0)
        self.steal = read_steal()
        self.window = (time.monotonic_ns(), *self.cpu())
        phase = await self.receive_broadcast(spec, job.latency)
        self.record_phase(phase, *self.window)

    async def run(self) -> dict[str, Any]:
        """Prepare within ``connect_deadline``, then measure within ``deadline``."""
        try:
            async with asyncio.timeout(self.job.connect_deadline):
                await self.prepare()
            async with asyncio.timeout(self.job.deadline):
                await self.measure()
        except TimeoutError:
            self.result["timed_out"] = True
            self.timed_out()
        except (OSError, RuntimeError, ValueError) as exc:
            self.result["error"] = f"{type(exc).__name__}: {exc}"
            self.result["complete"] = False
        finally:
            for subscriber in self.subscribers:
                if subscriber.transport is not None:
                    subscriber.transport.abort()
        self.result["connections_opened"] = len(self.subscribers)
        return self.result  # noqa: ASYNC910  asyncio; a failure is a result here

    def timed_out(self) -> None:
        """Report what was delivered before the deadline (a "did not finish")."""
        if self.current is not None and self.window is not None:
            self.record_phase(self.current, *self.window)
        self.result["complete"] = False


def by_event(events: list[bytes], latencies: list[int]) -> list[list[int]]:
    """Latencies (ns) grouped by event, rounded to µs, in sequence order (see ``_uncertainty``)."""
    grouped: dict[int, list[int]] = {}
    for event, latency in zip(events, latencies, strict=True):
        grouped.setdefault(int(event, 16), []).append((latency + 500) // 1000)
    return [grouped[seq] for seq in sorted(grouped)]


def _process_cpu(process: psutil.Process) -> float:
    # /proc/<pid>/task/*/schedstat counts nanoseconds on the CPU per thread;
    # psutil's user + system time is in clock ticks (10 ms), too coarse for
    # windows of a fraction of a second.
    try:
        total = 0
        for task in Path(f"/proc/{process.pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        times = process.cpu_times()
        return float(times.user + times.system)
    return total / 1e9


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> None:
    """Read a job from stdin, run it, print the result as JSON."""
    _raise_fd_limit()
    job = Job(**json.loads(sys.stdin.read()))
    result = uvloop.run(Run(job).run())
    result["job"] = asdict(job)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
