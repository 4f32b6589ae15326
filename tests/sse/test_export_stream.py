"""StreamingResponse in memory (streaming transport): formats, backpressure, batching, cleanup."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import pytest
import trio
import trio.testing

from trio_stream.sse import (
    ExportStatistics,
    StreamingResponse,
    csv_response,
    encode_chunk,
    ndjson_response,
)
from trio_stream.sse._asgi import ASGIApp, Receive, Scope, Send
from trio_stream.sse._window import ChunkWindow
from trio_stream.testing import open_asgi_client, open_sse_reader


def app_for(make: Callable[[], StreamingResponse], built: list[StreamingResponse]) -> ASGIApp:
    """An ASGI app building a fresh response per request (kept in ``built``)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response = make()
        built.append(response)
        await response(scope, receive, send)

    return app


async def items(  # noqa: ASYNC900  the response runs and acloses it
    values: Iterable[object], steps: list[str] | None = None
) -> AsyncIterator[Any]:
    try:
        for value in values:
            await trio.lowlevel.checkpoint()
            yield value
        await trio.lowlevel.checkpoint()
    finally:
        if steps is not None:
            steps.append("closed")


def rows(count: int, steps: list[str] | None = None) -> AsyncIterator[dict[str, int]]:
    return items(({"i": i} for i in range(count)), steps)


async def test_ndjson_rows_headers_and_statistics() -> None:
    built: list[StreamingResponse] = []
    app = app_for(lambda: ndjson_response(rows(1000)), built)
    async with open_asgi_client(app) as client:
        response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-accel-buffering"] == "no"
    assert "content-disposition" not in response.headers
    assert [json.loads(line) for line in response.text.splitlines()] == [
        {"i": i} for i in range(1000)
    ]
    stats = built[0].statistics()
    assert isinstance(stats, ExportStatistics)
    assert (stats.produced, stats.chunks, stats.bytes) == (1000, 1000, len(response.content))
    assert stats.writes < 1000  # small rows share writes
    assert stats.completed
    assert not stats.aborted
    assert not stats.disconnected
    assert not stats.streaming
    assert stats.in_flight == 0
    assert 1 <= stats.peak_in_flight <= stats.capacity == 512


async def test_a_producer_writing_to_its_send_channel() -> None:
    async def produce(send_channel: trio.abc.SendChannel[str | bytes]) -> None:
        async with send_channel:
            await send_channel.send("héllo ")
            await send_channel.send(b"world")

    built: list[StreamingResponse] = []
    app = app_for(lambda: StreamingResponse(produce, media_type="text/plain"), built)
    async with open_asgi_client(app) as client:
        response = await client.get("/")
    assert response.headers["content-type"] == "text/plain"
    assert response.content == "héllo world".encode()


async def test_send_nowait_and_a_full_window() -> None:
    results: list[str] = []

    async def produce(send_channel: trio.abc.SendChannel[bytes]) -> None:
        await trio.lowlevel.checkpoint()
        send_nowait = getattr(send_channel, "send_nowait")  # noqa: B009  ChunkSender's extra
        send_nowait(b"a")
        send_nowait(b"b")
        try:
            send_nowait(b"c")
        except trio.WouldBlock:
            results.append("full")
        send_channel.close()  # type: ignore[attr-defined]
        try:
            send_nowait(b"d")
        except trio.ClosedResourceError:
            results.append("closed")

    built: list[StreamingResponse] = []
    app = app_for(lambda: StreamingResponse(produce, capacity=2), built)
    async with open_asgi_client(app) as client:
        response = await client.get("/")
    assert response.content == b"ab"
    assert results == ["full", "closed"]


async def test_csv_with_header_quoting_and_a_download_name() -> None:
    table = [[1, "plain"], [2, 'with "quotes", and comma'], [3, "line\nbreak"]]
    built: list[StreamingResponse] = []
    make = lambda: csv_response(items(table), header=["id", "name"], filename="rapport été.csv")  # noqa: E731
    async with open_asgi_client(app_for(make, built)) as client:
        response = await client.get("/")
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"rapport _t_.csv\"; filename*=UTF-8''rapport%20%C3%A9t%C3%A9.csv"
    )
    assert response.text == (
        'id,name\r\n1,plain\r\n2,"with ""quotes"", and comma"\r\n3,"line\nbreak"\r\n'
    )


async def test_the_source_is_never_more_than_capacity_ahead_of_the_socket() -> None:
    produced = 0

    async def counted() -> AsyncIterator[bytes]:  # noqa: ASYNC900  the response acloses it
        nonlocal produced
        for i in range(100_000):
            await trio.lowlevel.checkpoint()
            produced += 1  # counted when handed over, before the yield
            yield b"%d\n" % i
        await trio.lowlevel.checkpoint()

    built: list[StreamingResponse] = []
    app = app_for(lambda: StreamingResponse(counted(), capacity=8), built)
    async with (
        open_asgi_client(app, capacity=1) as client,
        client.stream("GET", "/") as response,
        open_sse_reader(response) as reader,
    ):
        for _ in range(20):
            await trio.testing.wait_all_tasks_blocked()
            stats = built[0].statistics()
            # Stalled on the reader: the window is full, and nothing more was pulled.
            assert stats.in_flight == 8
            assert produced - stats.chunks == 8
            assert stats.produced == produced
            await reader.chunk()
        assert produced < 1000
    assert built[0].statistics().peak_in_flight == 8


async def test_small_chunks_are_batched_up_to_the_write_size() -> None:
    async def flood(send_channel: trio.abc.SendChannel[bytes]) -> None:
        for _ in range(2000):
            await send_channel.send(b"x" * 100)

    built: list[StreamingResponse] = []
    make = lambda: StreamingResponse(flood, capacity=256, write_size=4096)  # noqa: E731
    async with (
        open_asgi_client(app_for(make, built), capacity=1) as client,
        client.stream("GET", "/") as response,
        open_sse_reader(response) as reader,
    ):
        while await reader._read_chunk():
            pass
    sizes = [len(chunk) for chunk in reader.chunks]
    assert sum(sizes) == 200_000
    assert max(sizes) <= 4096 + 100  # a write stops once it holds write_size bytes
    assert built[0].statistics().writes < 2000 / 10


async def test_a_client_leaving_early_closes_the_generator() -> None:
    steps: list[str] = []
    built: list[StreamingResponse] = []
    app = app_for(lambda: ndjson_response(rows(1_000_000, steps), capacity=4), built)
    async with open_asgi_client(app, capacity=1) as client:
        async with client.stream("GET", "/") as response, open_sse_reader(response) as reader:
            await reader.chunk()
        await trio.testing.wait_all_tasks_blocked()
    assert steps == ["closed"]
    stats = built[0].statistics()
    assert stats.disconnected
    assert not stats.completed
    assert not stats.streaming
    assert stats.produced < 100


async def test_a_failing_source_aborts_without_error_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken() -> AsyncIterator[bytes]:  # noqa: ASYNC900  the response acloses it
        await trio.lowlevel.checkpoint()
        yield b"first\n"
        raise RuntimeError("secret database password")

    built: list[StreamingResponse] = []
    async with open_asgi_client(app_for(lambda: StreamingResponse(broken()), built)) as client:
        response = await client.get("/")
    assert b"secret" not in response.content
    stats = built[0].statistics()
    assert stats.aborted
    assert not stats.completed
    assert "export source failed" in caplog.text
    assert "export aborted: source failed" in caplog.text


async def test_a_reader_that_stops_is_cut_after_send_timeout(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    steps: list[str] = []
    built: list[StreamingResponse] = []
    make = lambda: ndjson_response(rows(10**9, steps), capacity=4, send_timeout=5.0)  # noqa: E731
    async with (
        open_asgi_client(app_for(make, built), capacity=1) as client,
        client.stream("GET", "/") as response,
        open_sse_reader(response) as reader,
    ):
        await reader.chunk()
        await trio.sleep(6)  # the reader stops reading; send_timeout (5 s) passes
        await trio.testing.wait_all_tasks_blocked()
        assert not built[0].statistics().streaming
    stats = built[0].statistics()
    assert stats.aborted
    assert not stats.disconnected
    assert steps == ["closed"]
    assert "client not reading" in caplog.text


@pytest.mark.parametrize("bad", [float("nan"), object()])
async def test_a_row_that_is_not_json_aborts_the_export(
    bad: object, caplog: pytest.LogCaptureFixture
) -> None:
    built: list[StreamingResponse] = []
    make = lambda: ndjson_response(items([{"ok": 1}, {"bad": bad}]))  # noqa: E731
    async with open_asgi_client(app_for(make, built)) as client:
        await client.get("/")
    assert built[0].statistics().aborted
    assert "export source failed" in caplog.text


def test_encode_chunk_accepts_bytes_like_and_text_only() -> None:
    assert encode_chunk(b"a") == b"a"
    assert encode_chunk(bytearray(b"b")) == b"b"
    assert encode_chunk(memoryview(b"c")) == b"c"
    assert encode_chunk("é") == "é".encode()
    with pytest.raises(TypeError, match="int"):
        encode_chunk(1)  # type: ignore[arg-type]


async def test_head_gets_headers_and_never_starts_the_source() -> None:
    steps: list[str] = []
    built: list[StreamingResponse] = []
    make = lambda: ndjson_response(rows(10, steps), content_length=99)  # noqa: E731
    async with open_asgi_client(app_for(make, built)) as client:
        response = await client.head("/")
    assert response.status_code == 200
    assert response.headers["content-length"] == "99"
    assert response.content == b""
    assert steps == []
    assert built[0].statistics().produced == 0


async def test_compression_and_content_length() -> None:
    body = "the same line again\n" * 100
    built: list[StreamingResponse] = []

    def make() -> StreamingResponse:
        lines = items(["the same line again\n"] * 100)
        return StreamingResponse(lines, compress=True, content_length=len(body))

    async with open_asgi_client(app_for(make, built)) as client:
        zipped = await client.get("/", headers={"accept-encoding": "gzip"})
        plain = await client.get("/", headers={"accept-encoding": "identity"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["vary"] == "accept-encoding"
    assert "content-length" not in zipped.headers  # the compressed size is not known
    assert zipped.text == body
    assert built[0].statistics().bytes < len(body) // 2  # as sent: compressed
    assert plain.headers["content-length"] == str(len(body))
    assert plain.text == body


async def test_shutdown_refuses_new_exports() -> None:
    shutdown = trio.Event()
    shutdown.set()
    built: list[StreamingResponse] = []
    make = lambda: ndjson_response(rows(3), shutdown_event=shutdown)  # noqa: E731
    async with open_asgi_client(app_for(make, built)) as client:
        response = await client.get("/")
    assert response.status_code == 503


def test_constructor_validates_its_arguments() -> None:
    with pytest.raises(ValueError, match="capacity"):
        StreamingResponse(rows(1), capacity=0)
    with pytest.raises(ValueError, match="write_size"):
        StreamingResponse(rows(1), write_size=0)
    with pytest.raises(ValueError, match="content_length"):
        StreamingResponse(rows(1), content_length=-1)
    with pytest.raises(ValueError, match="send_timeout"):
        StreamingResponse(rows(1), send_timeout=0)
    with pytest.raises(ValueError, match="CR, LF"):
        StreamingResponse(rows(1), headers={"x-a": "b\nc"})
    with pytest.raises(TypeError, match="async iterable"):
        StreamingResponse(42)  # type: ignore[arg-type]


async def test_statistics_before_the_request() -> None:
    stats = StreamingResponse(rows(1)).statistics()
    assert (stats.produced, stats.chunks, stats.writes, stats.streaming) == (0, 0, 0, False)
    await trio.lowlevel.checkpoint()


async def test_a_write_stops_growing_once_it_holds_write_size_bytes() -> None:
    async def flood(send_channel: trio.abc.SendChannel[bytes]) -> None:
        for _ in range(200):
            await send_channel.send(b"y" * 100)

    built: list[StreamingResponse] = []
    make = lambda: StreamingResponse(flood, capacity=8, max_batch=100, write_size=300)  # noqa: E731
    async with (
        open_asgi_client(app_for(make, built), capacity=1) as client,
        client.stream("GET", "/") as response,
        open_sse_reader(response) as reader,
    ):
        await reader.rest()
    sizes = [len(chunk) for chunk in reader.chunks]
    assert sum(sizes) == 20_000
    assert max(sizes) <= 300


async def test_a_closed_window_refuses_producers() -> None:
    window = ChunkWindow(capacity=1, write_size=10)
    window.put_nowait(b"a")
    with pytest.raises(trio.WouldBlock):
        window.put_nowait(b"b")
    window.close()
    with pytest.raises(trio.BrokenResourceError):
        window.put_nowait(b"c")
    with pytest.raises(trio.BrokenResourceError):
        await window.wait_for_room()
    assert await window.take(5) == []
    assert window.queued == 0


def test_max_batch_is_validated() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        StreamingResponse(rows(1), max_batch=0)
