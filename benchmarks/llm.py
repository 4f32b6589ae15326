"""LLM relay latency: trio_stream's ChatRelay against sse-starlette + httpx on uvicorn.

Run it with ``python -m benchmarks.llm [--quick]``; :func:`run` returns the
figures as a dict. One fake OpenAI-compatible upstream
(:class:`trio_stream.testing.FakeOpenAI` on Hypercorn) serves every request;
the two relays run in their own processes in front of it, each the obvious
way to write one:

* ``trio_stream``: ``ChatRelay(OpenAIUpstream(...))`` served by ``trio_stream.serve``;
* ``sse_starlette``: a Starlette route returning ``EventSourceResponse`` over
  ``httpx.AsyncClient.stream(...).aiter_lines()``, on uvicorn.

Measured from a trio client in this process:

* ``ttft``: request sent → first content token received, direct to the
  upstream and through each relay, alternately (the upstream answers at once,
  so the median of the paired differences is the relay's overhead);
* ``cancel``: the client closes after 3 tokens → the upstream sees its
  connection close (the upstream holds its answer after 3 tokens, and records
  the moment with ``time.perf_counter()``, a clock shared by processes);
* ``tokens_per_second``: one stream of ``tokens`` tokens sent back to back.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import trio

from trio_stream.protocol import SSEDecoder
from trio_stream.testing import FakeOpenAI, open_test_server

ROOT = Path(__file__).resolve().parents[1]
RELAYS = ("trio_stream", "sse_starlette")
BODY = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}], "stream": True}
TARGETS = {"ttft_overhead_ms": 5.0, "cancel_p99_ms": 20.0}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- the relays under test (each runs in its own process) ------------------------------


def serve_trio_stream(port: int, upstream: str) -> None:
    """trio_stream's relay: ChatRelay over OpenAIUpstream on Hypercorn."""
    from trio_stream.llm import ChatRelay, OpenAIUpstream
    from trio_stream.sse import serve

    async def main() -> None:
        async with OpenAIUpstream(upstream) as client, trio.open_nursery() as nursery:
            relay = ChatRelay(client)
            await nursery.start(partial(serve, relay.app(), port=port))
            print("READY", port, flush=True)

    trio.run(main)


def serve_sse_starlette(port: int, upstream: str) -> None:
    """The same relay written with sse-starlette + httpx, on uvicorn."""
    import uvicorn
    from sse_starlette.sse import EventSourceResponse
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.routing import Route

    client = httpx.AsyncClient(timeout=httpx.Timeout(300.0, connect=10.0))

    async def chat(request: Request) -> EventSourceResponse:
        body = await request.json()

        # The baseline as commonly written: sse-starlette takes an async generator (asyncio).
        async def events() -> AsyncIterator[dict[str, str]]:  # noqa: ASYNC900  asyncio baseline
            async with client.stream(
                "POST", f"{upstream}/chat/completions", json={**body, "stream": True}
            ) as response:
                async for line in response.aiter_lines():
                    if line.startswith("data: "):
                        yield {"data": line[6:]}  # noqa: ASYNC119  asyncio baseline

        return EventSourceResponse(events(), sep="\n")

    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    print("READY", port, flush=True)
    server.run()


@asynccontextmanager
async def _relay_process(name: str, upstream: str) -> AsyncIterator[str]:
    port = _free_port()
    command = [sys.executable, "-m", "benchmarks.llm", "--serve", name, str(port), upstream]
    process = await trio.lowlevel.open_process(command, cwd=ROOT, stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        with trio.fail_after(30):
            line = await process.stdout.receive_some(100)
            assert line.startswith(b"READY"), line
            url = f"http://127.0.0.1:{port}/v1"
            async with httpx.AsyncClient() as client:  # uvicorn prints before it listens
                while True:
                    try:
                        await client.get(url)
                        break
                    except httpx.TransportError:
                        await trio.sleep(0.05)
        yield url
    finally:
        process.kill()
        with trio.move_on_after(5) as scope:
            scope.shield = True
            await process.wait()


# -- measurements ---------------------------------------------------------------------------


async def _stream(
    client: httpx.AsyncClient, url: str, stop_after: int | None = None
) -> tuple[float, float, int]:
    """(start, first token time, tokens) for one streamed answer; stops by cancellation."""
    decoder = SSEDecoder()
    tokens = 0
    first = 0.0
    start = time.perf_counter()
    async with client.stream("POST", f"{url}/chat/completions", json=BODY) as response:
        with trio.CancelScope() as reading:
            async for piece in response.aiter_bytes():
                for event in decoder.feed(piece):
                    if event.data == "[DONE]" or not event.data.startswith("{"):
                        continue
                    for choice in json.loads(event.data).get("choices", []):
                        text = choice["delta"].get("content")
                        if text:
                            tokens += len(text) // 2  # every token is 2 characters
                            first = first or time.perf_counter()
                if stop_after is not None and tokens >= stop_after:
                    reading.cancel()
    return start, first, tokens


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(ordered) * 1000, 3), "p99": round(p99 * 1000, 3)}


async def _ttft_pairs(
    client: httpx.AsyncClient, direct: str, relay: str, runs: int
) -> tuple[list[float], list[float]]:
    """First-token times direct and through the relay, alternating so that a change of
    machine load hits both sides alike."""
    direct_samples, relay_samples = [], []
    for _ in range(runs):
        start, first, _ = await _stream(client, direct)
        direct_samples.append(first - start)
        start, first, _ = await _stream(client, relay)
        relay_samples.append(first - start)
    await trio.lowlevel.checkpoint()
    return direct_samples, relay_samples


async def _cancel_latency(
    client: httpx.AsyncClient, url: str, fake: FakeOpenAI, runs: int
) -> tuple[list[float], int]:
    samples, missed = [], 0
    for _ in range(runs):
        fake.requests.clear()
        await _stream(client, url, stop_after=3)  # leaving it closes the connection
        closed_at = time.perf_counter()
        with trio.move_on_after(2.0):
            await fake.requests[0].ended.wait()
        request = fake.requests[0]
        if request.disconnected_at is None:
            missed += 1  # the relay kept the upstream open
        else:
            samples.append(max(0.0, request.disconnected_at - closed_at))
    await trio.lowlevel.checkpoint()
    return samples, missed


async def _throughput(client: httpx.AsyncClient, url: str) -> float:
    start, _, tokens = await _stream(client, url)
    return tokens / (time.perf_counter() - start)


async def _measure(
    runs: int, ttft_runs: int, tokens: int, relays: tuple[str, ...]
) -> dict[str, Any]:
    quick = FakeOpenAI(["t0", "t1", "t2"])
    held = FakeOpenAI([f"t{i % 10}" for i in range(10)], hold_after=3)
    bulk = FakeOpenAI([f"t{i % 10}" for i in range(tokens)])
    result: dict[str, Any] = {"runs": runs, "ttft_runs": ttft_runs, "tokens": tokens}
    async with (
        open_test_server(quick) as q,
        open_test_server(held) as h,
        open_test_server(bulk) as b,
        httpx.AsyncClient(timeout=30.0) as client,
    ):
        direct = q.url + "/v1"
        ttft: dict[str, Any] = {}
        overhead: dict[str, float] = {}
        rate = {"direct": round(await _throughput(client, b.url + "/v1"))}
        cancel: dict[str, Any] = {}
        for name in relays:
            for fake_url, key in ((q.url, "ttft"), (h.url, "cancel"), (b.url, "rate")):
                async with _relay_process(name, fake_url + "/v1") as url:
                    if key == "ttft":
                        await _ttft_pairs(client, direct, url, 10)  # warm up
                        base, through = await _ttft_pairs(client, direct, url, ttft_runs)
                        ttft[f"direct ({name} run)"] = _summary(base)
                        ttft[name] = _summary(through)
                        differences = [r - d for d, r in zip(base, through, strict=True)]
                        overhead[name] = round(statistics.median(differences) * 1000, 3)
                    elif key == "cancel":
                        samples, missed = await _cancel_latency(client, url, held, runs)
                        cancel[name] = {**(_summary(samples) if samples else {}), "missed": missed}
                    else:
                        await _throughput(client, url)
                        rate[name] = round(await _throughput(client, url))
    result["ttft_ms"] = ttft
    result["ttft_overhead_ms"] = overhead
    result["cancel_latency_ms"] = cancel
    result["tokens_per_second"] = rate
    if "trio_stream" in relays:
        result["targets_met"] = {
            "ttft_overhead_under_5_ms": result["ttft_overhead_ms"]["trio_stream"]
            < TARGETS["ttft_overhead_ms"],
            "cancel_p99_under_20_ms": cancel["trio_stream"].get("p99", 1e9)
            < TARGETS["cancel_p99_ms"]
            and cancel["trio_stream"]["missed"] == 0,
        }
    return result


def run(
    runs: int = 300, ttft_runs: int = 200, tokens: int = 5000, *, relays: tuple[str, ...] = RELAYS
) -> dict[str, Any]:
    """Measure TTFT overhead, cancellation latency and single-stream tokens/s for each relay.

    ``runs`` cancellations and ``ttft_runs`` first-token timings per relay
    (p50 / p99 in milliseconds); ``tokens`` for the throughput stream.
    """
    return trio.run(_measure, runs, ttft_runs, tokens, relays)


def format_table(result: dict[str, Any]) -> str:
    """The figures of :func:`run` as a small markdown table."""
    rows = [
        "| relay | TTFT p50 ms | TTFT p99 ms | TTFT overhead ms | cancel p50 ms | "
        "cancel p99 ms | missed cancels | tokens/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in ("direct", *result["cancel_latency_ms"]):
        ttft = result["ttft_ms"].get(name) or result["ttft_ms"][f"direct ({RELAYS[0]} run)"]
        cancel = result["cancel_latency_ms"].get(name, {})
        overhead = result["ttft_overhead_ms"].get(name, "")
        rows.append(
            f"| {name} | {ttft['p50']} | {ttft['p99']} | {overhead} | {cancel.get('p50', '')} | "
            f"{cancel.get('p99', '')} | {cancel.get('missed', '')} | "
            f"{result['tokens_per_second'][name]} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    """Command line entry point (also the relay subprocesses' ``--serve NAME PORT URL``)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.llm", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few runs (a smoke test)")
    parser.add_argument("--json", action="store_true", help="print the dict as JSON")
    parser.add_argument(
        "--serve", nargs=3, metavar=("NAME", "PORT", "UPSTREAM"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.serve:
        name, port, upstream = args.serve
        servers: dict[str, Callable[[int, str], None]] = {
            "trio_stream": serve_trio_stream,
            "sse_starlette": serve_sse_starlette,
        }
        servers[name](int(port), upstream)
        return
    result = run(30, 20, 500) if args.quick else run()
    result["python"] = sys.version.split()[0]
    result["cpus"] = os.cpu_count()
    print(json.dumps(result) if args.json else format_table(result))


if __name__ == "__main__":
    main()
