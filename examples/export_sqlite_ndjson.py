"""Lesson: export a large table as NDJSON without holding it in memory.

The server streams `SELECT * FROM items` row by row. SQLite is blocking, so
every call to it runs in a worker thread (`trio.to_thread`); the rows go out
through `ndjson_response`, whose bounded window makes a slow client slow the
query down instead of filling the server's memory. When the client goes
away, the export is cancelled at once and the cursor is closed.

The client reads the stream with httpx and stops early by *cancelling* its
read, never with `break` (see `first_rows`).

Run:  python examples/export_sqlite_ndjson.py --port 8000
      curl -N http://127.0.0.1:8000/items.ndjson | head
Test: python examples/export_sqlite_ndjson.py --port 0 --self-test
"""

from __future__ import annotations

import argparse
import functools
import json
import sqlite3
import tempfile
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import trio

from trio_stream.sse import Route, Router, ndjson_response, serve

ROWS = 50_000
FETCH = 500  # rows per trip to the worker thread: one thread hop per batch, not per row


class Cleanups:
    """Counts exports that closed their cursor (what the self-test checks)."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = trio.Event()

    def note(self) -> None:
        self.count += 1
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, count: int) -> None:
        await trio.lowlevel.checkpoint()
        while self.count < count:
            await self._changed.wait()


def make_database(path: Path, rows: int) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
        conn.executemany(
            "INSERT INTO items VALUES (?, ?, ?)",
            ((i, f"item {i}", i * 0.25) for i in range(rows)),
        )
    conn.close()


async def table_rows(  # noqa: ASYNC900, ASYNC911  ndjson_response acloses it; fetches checkpoint
    path: Path, cleanups: Cleanups
) -> AsyncIterator[dict[str, object]]:
    # check_same_thread=False: each to_thread call may run on another worker
    # thread; the calls never overlap, which is all SQLite needs.
    connect = functools.partial(sqlite3.connect, path, check_same_thread=False)
    conn = await trio.to_thread.run_sync(connect)
    try:
        cursor = await trio.to_thread.run_sync(conn.execute, "SELECT * FROM items ORDER BY id")
        try:
            while batch := await trio.to_thread.run_sync(cursor.fetchmany, FETCH):
                for item_id, name, price in batch:
                    # The response asks for the next row only when its window
                    # has room: a stalled client stops the fetching here.
                    yield {"id": item_id, "name": name, "price": price}  # noqa: ASYNC911  one fetch, many rows
        finally:
            # This runs when the client disconnects, i.e. while the task is
            # being cancelled: any await here would raise at once. Closing is
            # quick and synchronous, so it always happens.
            cursor.close()
            cleanups.note()
    finally:
        conn.close()


def make_app(database: Path, cleanups: Cleanups) -> Router:
    async def items(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        # One response per request; `filename` makes browsers save it.
        response = ndjson_response(table_rows(database, cleanups), filename="items.ndjson")
        await response(scope, receive, send)

    return Router([Route("/items.ndjson", items)])


async def count_rows(client: httpx.AsyncClient, url: str) -> int:
    """Read the whole export, a line at a time, without keeping it."""
    rows, pending = 0, b""
    async with client.stream("GET", url) as response:
        response.raise_for_status()
        async for chunk in response.aiter_bytes():
            *lines, pending = (pending + chunk).split(b"\n")
            rows += len(lines)
    return rows


async def first_rows(client: httpx.AsyncClient, url: str, wanted: int) -> list[dict[str, object]]:
    """Read ``wanted`` rows, then stop by cancelling the read.

    `break` would leave httpx's chain of async generators suspended, to be
    finalised later by the garbage collector, outside this task. Cancelling
    the scope raises `Cancelled` inside the innermost generator instead: the
    whole chain unwinds now, and leaving `client.stream` closes the
    connection, which the server sees as a disconnect.
    """
    found: list[dict[str, object]] = []
    pending = b""
    async with client.stream("GET", url) as response:
        with trio.CancelScope() as reading:
            async for chunk in response.aiter_bytes():
                *lines, pending = (pending + chunk).split(b"\n")
                found += [json.loads(line) for line in lines]
                if len(found) >= wanted:
                    reading.cancel()
    return found[:wanted]


async def self_test(url: str, cleanups: Cleanups) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        total = await count_rows(client, url)
        assert total == ROWS, total
        first = await first_rows(client, url, 100)
        assert [row["id"] for row in first] == list(range(100))
    # The server sees the early disconnect and cancels that export.
    with trio.fail_after(10):
        await cleanups.wait_for(2)
    print(f"self-test ok: {total} rows exported; an early stop closed the cursor")


async def main(port: int, run_self_test: bool) -> None:
    with tempfile.TemporaryDirectory() as directory:
        database = Path(directory) / "items.db"
        await trio.to_thread.run_sync(make_database, database, ROWS)
        cleanups = Cleanups()
        app = make_app(database, cleanups)
        async with trio.open_nursery() as nursery:
            base = await nursery.start(functools.partial(serve, app, port=port))
            url = f"{base}/items.ndjson"
            if run_self_test:
                await self_test(url, cleanups)
                nursery.cancel_scope.cancel()
            else:
                print(f"serving {ROWS} rows at {url}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--self-test", action="store_true", help="serve, check, exit")
    args = parser.parse_args()
    trio.run(main, args.port, args.self_test)
