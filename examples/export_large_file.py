"""Lesson: stream a large file with flat memory, and stop a download early.

`file_response` opens the file when the request arrives (404 if it is
missing), sends its size as `Content-Length`, and reads it in 64 KiB chunks
only as fast as the client takes them: at most `capacity` chunks (1 MiB by
default) are ever in memory, however large the file. The file is closed
when the response ends, also when the client leaves halfway.

The client hashes the body as it arrives (never holding it), and the second
download stops after 1 MiB by cancelling its read: leaving `client.stream`
closes the connection, the server sees a disconnect and closes the file.

Run:  python examples/export_large_file.py --port 8000 --size-mb 512
      curl -o /dev/null http://127.0.0.1:8000/data.bin
Test: python examples/export_large_file.py --port 0 --self-test
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import tempfile
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import httpx
import trio

from trio_stream.sse import ExportStatistics, Route, Router, file_response, serve

MIB = 1024 * 1024


def make_file(path: Path, size: int) -> str:
    """Write ``size`` random bytes to ``path``; return their SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as file:
        for _ in range(0, size, MIB):
            block = os.urandom(min(MIB, size - file.tell()))
            digest.update(block)
            file.write(block)
    return digest.hexdigest()


class Downloads:
    """The statistics of every finished download (what the self-test checks)."""

    def __init__(self) -> None:
        self.finished: list[ExportStatistics] = []
        self._changed = trio.Event()

    def note(self, stats: ExportStatistics) -> None:
        self.finished.append(stats)
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, count: int) -> None:
        await trio.lowlevel.checkpoint()
        while len(self.finished) < count:
            await self._changed.wait()


def make_app(path: Path, downloads: Downloads) -> Router:
    async def data(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        response = file_response(path, filename="data.bin")
        await response(scope, receive, send)
        # The response has returned: its file is closed, however it ended.
        if scope["type"] == "http":
            downloads.note(response.statistics())

    return Router([Route("/data.bin", data)])


async def sha256_of(client: httpx.AsyncClient, url: str) -> tuple[str, int]:
    """Download ``url``, hashing it chunk by chunk; return the digest and size."""
    digest, size = hashlib.sha256(), 0
    async with client.stream("GET", url) as response:
        response.raise_for_status()
        assert response.headers["content-length"] is not None
        async for chunk in response.aiter_bytes():
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


async def first_bytes(client: httpx.AsyncClient, url: str, wanted: int) -> int:
    """Read about ``wanted`` bytes, then stop by cancelling the read (not `break`:
    that would leave httpx's async generators suspended, outside this task)."""
    size = 0
    async with client.stream("GET", url) as response:
        with trio.CancelScope() as reading:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size >= wanted:
                    reading.cancel()
    return size


async def self_test(url: str, expected: str, size: int, downloads: Downloads) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        digest, received = await sha256_of(client, url)
        assert (digest, received) == (expected, size)
        await first_bytes(client, url, MIB)
    with trio.fail_after(10):
        await downloads.wait_for(2)
    whole, partial = downloads.finished
    assert whole.completed
    assert whole.peak_in_flight <= whole.capacity  # never more than 16 chunks in memory
    assert partial.disconnected
    assert partial.bytes < size
    print(f"self-test ok: {size} bytes, sha256 match; an early stop closed the file")


async def main(port: int, size: int, run_self_test: bool) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "data.bin"
        expected = await trio.to_thread.run_sync(make_file, path, size)
        downloads = Downloads()
        async with trio.open_nursery() as nursery:
            app = make_app(path, downloads)
            base = await nursery.start(functools.partial(serve, app, port=port))
            url = f"{base}/data.bin"
            if run_self_test:
                await self_test(url, expected, size, downloads)
                nursery.cancel_scope.cancel()
            else:
                print(f"serving {size} bytes at {url} (sha256 {expected})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--size-mb", type=int, default=16)
    parser.add_argument("--self-test", action="store_true", help="serve, check, exit")
    args = parser.parse_args()
    trio.run(main, args.port, args.size_mb * MIB, args.self_test)
