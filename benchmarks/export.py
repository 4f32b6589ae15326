"""Export streaming: a 1 GiB response with the server's memory flat, to a slow client.

The server (``StreamingResponse`` on ``serve``, in its own process) streams
``size_mb`` MiB of NDJSON rows generated on the fly (``--source ndjson``) or
a file from disk (``--source file``). The client, in this process, reads
with httpx at ``read_mb_s`` MiB/s (slower than the server can produce, so
backpressure must hold the producer back) and stops reading altogether for
``stall_seconds`` halfway. Every ``sample_interval`` seconds the server's
RSS is sampled (psutil). Figures: RSS before the transfer, its peak and
growth during it, throughput, and the response's own counters (most chunks
ever in flight, out of its capacity).

Run: ``python -m benchmarks.export [--size-mb 1024] [--read-mb-s 20] [--source ndjson|file]``
(``--quick``: 64 MiB). :func:`run` returns the figures as a dict.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import psutil
import trio

ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
_PAD = "x" * 900


# -- the server (its own process) -----------------------------------------------------------


def _row(i: int) -> dict[str, object]:
    return {"id": i, "name": f"item {i:012d}", "price": 12.5, "pad": _PAD}


def serve_exports(port: int) -> None:
    """Serve ``/export.ndjson?mb=N``, ``/export.bin?mb=N`` and ``/stats`` (last export's)."""
    from trio_stream.sse import Route, Router, StreamingResponse, file_response, ndjson_response
    from trio_stream.sse import serve as serve_app

    row_size = len(json.dumps(_row(0), separators=(",", ":"))) + 1
    last: list[StreamingResponse] = []
    directory = tempfile.mkdtemp()

    def megabytes(scope: MutableMapping[str, Any]) -> int:
        return int(parse_qs(scope["query_string"].decode()).get("mb", ["1"])[0])

    async def rows(  # noqa: ASYNC900, ASYNC124, ASYNC911  CPU-bound; the window checkpoints
        count: int,
    ) -> AsyncIterator[dict[str, object]]:
        for i in range(count):
            yield _row(i)  # noqa: ASYNC911  CPU-bound; the window checkpoints

    async def ndjson(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        last[:] = [ndjson_response(rows(megabytes(scope) * MIB // row_size))]
        await last[0](scope, receive, send)

    async def binary(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        path = Path(directory) / f"{megabytes(scope)}.bin"
        if not path.exists():  # noqa: ASYNC240  once per size, before streaming
            with path.open("wb") as file:  # noqa: ASYNC230  a sparse file: no data written
                file.truncate(megabytes(scope) * MIB)
        last[:] = [file_response(path)]
        await last[0](scope, receive, send)

    async def stats(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        figures = dataclasses.asdict(last[0].statistics()) if last else {}
        body = json.dumps(figures).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    app = Router(
        [
            Route("/export.ndjson", ndjson),
            Route("/export.bin", binary),
            Route("/stats", stats),
        ]
    )

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: serve_app(app, port=port, task_status=task_status)
            )
            print("READY", port, flush=True)

    trio.run(main)


# -- the client and the measurement (this process) -----------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _sample(
    process: psutil.Process,
    interval: float,
    out: list[tuple[float, int, int]],
    received: list[int],
    start: float,
) -> None:
    while True:
        out.append((time.perf_counter() - start, process.memory_info().rss, received[0]))
        await trio.sleep(interval)


async def _download(
    client: httpx.AsyncClient, url: str, rate: float, stall: float, size: int, received: list[int]
) -> None:
    """Read ``url`` at ``rate`` bytes/s, pausing ``stall`` seconds halfway."""
    start = time.perf_counter()
    paused = 0.0
    async with client.stream("GET", url) as response:
        response.raise_for_status()
        async for chunk in response.aiter_raw():
            received[0] += len(chunk)
            if stall and not paused and received[0] >= size // 2:
                await trio.sleep(stall)  # the reader stops: the server must stop too
                paused = stall
            due = start + paused + received[0] / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await trio.sleep(delay)


async def _measure(
    base: str, pid: int, path: str, size_mb: int, read_mb_s: float, stall: float, interval: float
) -> dict[str, Any]:
    process = psutil.Process(pid)
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0)) as client:
        # Warm up the code paths, then take the idle baseline.
        await client.get(f"{base}{path}?mb=1")
        await trio.sleep(0.5)
        baseline = process.memory_info().rss
        received = [0]
        samples: list[tuple[float, int, int]] = []
        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_sample, process, interval, samples, received, start)
            await _download(
                client,
                f"{base}{path}?mb={size_mb}",
                read_mb_s * MIB,
                stall,
                size_mb * MIB,
                received,
            )
            seconds = time.perf_counter() - start
            nursery.cancel_scope.cancel()
        stats = (await client.get(f"{base}/stats")).json()
    rss = [sample[1] for sample in samples]
    step = max(1, len(samples) // 100)
    return {
        "bytes": received[0],
        "seconds": round(seconds, 2),
        "throughput_mib_s": round(received[0] / MIB / seconds, 1),
        "rss_baseline_mib": round(baseline / MIB, 1),
        "rss_peak_mib": round(max(rss) / MIB, 1),
        "rss_final_mib": round(rss[-1] / MIB, 1),
        "rss_growth_mib": round((max(rss) - baseline) / MIB, 1),
        "rss_samples": [
            [round(t, 2), round(r / MIB, 1), round(b / MIB, 1)] for t, r, b in samples[::step]
        ],
        "server": stats,
    }


def run(
    *,
    size_mb: int = 1024,
    source: str = "ndjson",
    read_mb_s: float = 20.0,
    stall_seconds: float = 3.0,
    sample_interval: float = 0.1,
) -> dict[str, Any]:
    """Stream ``size_mb`` MiB to a client reading at ``read_mb_s``; return the figures.

    ``rss_samples`` are ``[seconds, server RSS MiB, MiB received]`` (at most
    about 100 of them); ``server`` holds the response's ``ExportStatistics``.
    """
    if source not in {"ndjson", "file"}:
        raise ValueError("source is 'ndjson' or 'file'")
    port = _free_port()
    command = [sys.executable, "-m", "benchmarks.export", "--serve", str(port)]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, env=os.environ.copy())
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line.startswith(b"READY"):
            raise RuntimeError(f"the export server did not start: {line!r}")
        path = "/export.ndjson" if source == "ndjson" else "/export.bin"
        result = trio.run(
            _measure,
            f"http://127.0.0.1:{port}",
            server.pid,
            path,
            size_mb,
            read_mb_s,
            stall_seconds,
            sample_interval,
        )
    finally:
        server.kill()
        server.wait(timeout=10)
    return {
        "size_mib": size_mb,
        "source": source,
        "read_mib_s": read_mb_s,
        "stall_seconds": stall_seconds,
        **result,
    }


def to_markdown(result: dict[str, Any]) -> str:
    """Render a :func:`run` result as a short markdown table."""
    server = result["server"]
    return "\n".join(
        [
            f"Export of {result['size_mib']:,} MiB ({result['source']}) to a client reading at "
            f"{result['read_mib_s']} MiB/s, pausing {result['stall_seconds']} s halfway",
            "",
            "| figure | value |",
            "|---|---:|",
            f"| received | {result['bytes'] / MIB:,.0f} MiB in {result['seconds']} s "
            f"({result['throughput_mib_s']} MiB/s) |",
            f"| server RSS before | {result['rss_baseline_mib']} MiB |",
            f"| server RSS peak during | {result['rss_peak_mib']} MiB |",
            f"| growth | {result['rss_growth_mib']} MiB |",
            f"| chunks in flight, most | {server.get('peak_in_flight')} of "
            f"{server.get('capacity')} |",
            f"| writes | {server.get('writes'):,} for {server.get('chunks'):,} chunks |",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: ``python -m benchmarks.export``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--source", choices=["ndjson", "file"], default="ndjson")
    parser.add_argument("--read-mb-s", type=float, default=20.0)
    parser.add_argument("--stall", type=float, default=3.0)
    parser.add_argument("--quick", action="store_true", help="64 MiB")
    parser.add_argument("--json", action="store_true", help="print the raw result too")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        serve_exports(args.serve)
        return
    result = run(
        size_mb=64 if args.quick else args.size_mb,
        source=args.source,
        read_mb_s=args.read_mb_s,
        stall_seconds=args.stall,
    )
    print(to_markdown(result))
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
