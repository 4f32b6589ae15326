"""StreamingResponse on real Hypercorn and sockets: bounded memory, cursors and files closed."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import socket
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
import trio
import trio.testing

from trio_stream.sse import Route, Router, StreamingResponse, file_response, ndjson_response
from trio_stream.sse._asgi import ASGIApp, Receive, Scope, Send, handle_lifespan
from trio_stream.testing import open_test_server

SAFETY = 20  # seconds: a bound on each test, never a wait for something to happen
ROW = "x" * 1000


def make_database(path: Path, count: int) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
        conn.executemany(
            "INSERT INTO items VALUES (?, ?)", ((i, f"item {i}") for i in range(count))
        )
    conn.close()


async def table_rows(  # noqa: ASYNC900, ASYNC911  the response acloses it; fetches checkpoint
    path: Path, cursors: list[sqlite3.Cursor]
) -> AsyncIterator[dict[str, object]]:
    # What examples/export_sqlite_ndjson.py does: blocking calls in a worker
    # thread; closing synchronously in `finally` (it runs while cancelled).
    connect = functools.partial(sqlite3.connect, path, check_same_thread=False)
    conn = await trio.to_thread.run_sync(connect)
    try:
        cursor = await trio.to_thread.run_sync(conn.execute, "SELECT id, name FROM items")
        cursors.append(cursor)
        try:
            while batch := await trio.to_thread.run_sync(cursor.fetchmany, 100):
                for row_id, name in batch:
                    yield {"id": row_id, "name": name}  # noqa: ASYNC911  one fetch, many rows
        finally:
            cursor.close()
    finally:
        conn.close()


def app_for(make: Callable[[], StreamingResponse], built: list[StreamingResponse]) -> ASGIApp:
    """An ASGI app building a fresh response per request (kept in ``built``)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await handle_lifespan(receive, send)
            return
        response = make()
        built.append(response)
        await response(scope, receive, send)

    return app


def frozen_reader(port: int, path: str) -> socket.socket:
    """A client that sends a request and then never reads (tiny receive buffer)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
    return sock


async def read_lines(response: httpx.Response, count: int) -> list[bytes]:
    """The first ``count`` lines; stops by cancelling the read (no leaked httpx generator)."""
    lines: list[bytes] = []
    buffer = b""
    with trio.CancelScope() as reading:
        async for chunk in response.aiter_bytes():
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            lines += complete
            if len(lines) >= count:
                reading.cancel()
    return lines[:count]


async def test_a_client_leaving_halfway_closes_the_cursor(tmp_path: Path) -> None:
    database = tmp_path / "items.db"
    make_database(database, 20_000)
    cursors: list[sqlite3.Cursor] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await ndjson_response(table_rows(database, cursors), capacity=64)(scope, receive, send)

    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server:
            async with httpx.AsyncClient() as client, client.stream("GET", server.url) as response:
                lines = await read_lines(response, 500)
            assert [json.loads(line)["id"] for line in lines] == list(range(500))
            await server.wait_idle()
            await server.wait_connections_closed()
    (cursor,) = cursors
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        cursor.fetchone()


async def test_memory_stays_bounded_while_the_client_stalls() -> None:
    total = 16_000  # ~16 MB: more than the kernel's socket buffers hold
    produced = 0
    capacity = 64

    async def big() -> AsyncIterator[dict[str, object]]:  # noqa: ASYNC900  the response acloses it
        nonlocal produced
        for i in range(total):
            await trio.lowlevel.checkpoint()
            produced += 1
            yield {"i": i, "pad": ROW}
        await trio.lowlevel.checkpoint()

    built: list[StreamingResponse] = []
    app = app_for(lambda: ndjson_response(big(), capacity=capacity), built)

    received = 0
    with trio.fail_after(SAFETY):
        async with (
            open_test_server(app) as server,
            httpx.AsyncClient() as client,
            client.stream("GET", server.url) as response,
        ):
            body = response.aiter_bytes()
            received += len(await anext(body))
            # The client stops reading: once every task is blocked, the export
            # is stalled on a full window, not buffering.
            await trio.testing.wait_all_tasks_blocked(cushion=0.05)
            stats = built[0].statistics()
            assert stats.in_flight == capacity
            assert produced - stats.chunks == capacity
            assert produced < total
            with trio.CancelScope() as reading:
                async for chunk in body:
                    received += len(chunk)
                    stats = built[0].statistics()
                    assert produced - stats.chunks <= capacity
                    if stats.completed:
                        reading.cancel()
    stats = built[0].statistics()
    assert stats.completed
    assert stats.peak_in_flight == capacity
    assert stats.produced == produced == total
    assert stats.bytes >= received


async def test_a_failing_source_cuts_the_body_and_others_keep_going(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken() -> AsyncIterator[bytes]:  # noqa: ASYNC900  the response acloses it
        await trio.lowlevel.checkpoint()
        yield b"half of a file\n"
        raise OSError("disk on fire at /secret/path")

    async def fine() -> AsyncIterator[bytes]:  # noqa: ASYNC900  the response acloses it
        await trio.lowlevel.checkpoint()
        yield b"all of it\n"
        await trio.lowlevel.checkpoint()

    router = Router(
        [
            Route("/broken", lambda s, r, w: StreamingResponse(broken())(s, r, w)),
            Route("/fine", lambda s, r, w: StreamingResponse(fine())(s, r, w)),
        ]
    )
    with trio.fail_after(SAFETY):
        async with open_test_server(router) as server, httpx.AsyncClient() as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get(f"{server.url}/broken")
            good = await client.get(f"{server.url}/fine")
    assert good.content == b"all of it\n"
    assert "export source failed" in caplog.text


async def test_a_frozen_reader_is_cut_and_the_source_closed() -> None:
    steps: list[str] = []

    async def flood() -> AsyncIterator[bytes]:  # noqa: ASYNC900  the response acloses it
        try:
            while True:  # bounded by the window: parks once the reader stops
                await trio.lowlevel.checkpoint()
                yield b"x" * 65536
        finally:
            steps.append("closed")

    built: list[StreamingResponse] = []
    app = app_for(lambda: StreamingResponse(flood(), send_timeout=0.5), built)

    with trio.fail_after(SAFETY):
        async with open_test_server(app, send_timeout=0.5) as server:
            with frozen_reader(server.port, "/"):
                await server.wait_requests_started(1)
                await server.wait_idle()
    # send_timeout or the kernel's TCP_USER_TIMEOUT, whichever fires first.
    assert steps == ["closed"]
    assert built[0].statistics().aborted


async def test_a_file_streams_with_its_length_and_is_closed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    csv_file = tmp_path / "table.csv"
    csv_file.write_text("a,b\n")
    path = tmp_path / "data.bin"
    content = os.urandom(3 * 65536 + 123)
    path.write_bytes(content)
    built: list[StreamingResponse] = []
    router = Router(
        [
            Route("/file", app_for(lambda: file_response(path, filename="data.bin"), built)),
            Route("/missing", lambda s, r, w: file_response(tmp_path / "nope.txt")(s, r, w)),
            Route("/directory", lambda s, r, w: file_response(tmp_path)(s, r, w)),
            Route(
                "/table",
                lambda s, r, w: file_response(csv_file, chunk_size=1, content_length=4)(s, r, w),
            ),
        ]
    )
    with trio.fail_after(SAFETY):
        async with open_test_server(router) as server, httpx.AsyncClient() as client:
            response = await client.get(f"{server.url}/file")
            assert response.content == content
            assert response.headers["content-length"] == str(len(content))
            assert response.headers["content-type"] == "application/octet-stream"
            missing = await client.get(f"{server.url}/missing")
            directory = await client.get(f"{server.url}/directory")
            table = await client.get(f"{server.url}/table")
            async with client.stream("GET", f"{server.url}/file") as partial:
                await read_lines(partial, 1)
            await server.wait_idle()
    assert missing.status_code == 404
    assert missing.text == "not found"
    assert (directory.status_code, directory.text) == (500, "internal error")
    assert "cannot open the file" in caplog.text
    assert (table.headers["content-type"], table.headers["content-length"]) == ("text/csv", "4")
    assert table.text == "a,b\n"
    assert str(path) not in _open_files()
    assert built[0].statistics().completed
    assert built[0].statistics().bytes == len(content)
    assert built[1].statistics().disconnected


def _open_files() -> set[str]:
    """What this process's file descriptors point to (Linux)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):  # the directory's own descriptor
            found.add(os.readlink(f"/proc/self/fd/{fd}"))
    return found


def test_file_response_options_are_checked() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        file_response("x", chunk_size=0)
    response = file_response("x.bin", media_type="application/x-thing", content_length=5)
    assert response.statistics().capacity == 16
