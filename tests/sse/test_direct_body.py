"""Body chunks written straight to Hypercorn's HTTP/1.1 connection (DirectBody, HeaderSend)."""

from __future__ import annotations

import errno
import logging
import os
import random
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import h11
import httpx
import pytest
import trio

from trio_stream.protocol import Event, SSEDecoder
from trio_stream.sse import EventStream, Route, Router
from trio_stream.sse._asgi import ASGIApp, Message, Receive, Scope, Send
from trio_stream.sse._direct import DirectBody, HeaderSend, direct_body
from trio_stream.testing import (
    TLSCertificate,
    issue_tls_certificate,
    open_sse_reader,
    open_test_server,
)

SAFETY = 15  # seconds: a bound on each test, never a wait for something to happen
START: Message = {"type": "http.response.start", "status": 200, "headers": []}
END: Message = {"type": "http.response.body", "body": b"", "more_body": False}


def payload(i: int, size: int) -> str:
    """Distinct, incompressible event data: a shifted or torn chunk cannot pass for it."""
    return random.Random(i).randbytes(size // 2).hex()


def big_events(
    count: int,
    size: int,
    found: list[DirectBody | None] | None = None,
    send_timeout: float = SAFETY,
) -> ASGIApp:
    """``count`` events of ``size`` bytes, a chunk each; ``found``: see ProbeSend."""

    async def produce(send_channel: trio.MemorySendChannel[Event]) -> None:
        async with send_channel:
            for i in range(count):
                await send_channel.send(Event(payload(i, size), id=str(i)))

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        stream = EventStream(produce, max_batch=1, capacity=2, send_timeout=send_timeout)
        await stream(scope, receive, send if found is None else ProbeSend(send, found))

    return app


class ProbeSend(HeaderSend):
    """Adds no header: records what direct_body finds once the response started."""

    def __init__(self, inner: Send, found: list[DirectBody | None]) -> None:
        super().__init__(inner, [])
        self.found = found

    async def __call__(self, message: Message) -> None:
        await super().__call__(message)
        if message["type"] == "http.response.start":
            self.found.append(direct_body(self))


class RawResponse:
    """An HTTP/1.1 response read from a raw socket, framing checked by h11 (strict chunks)."""

    def __init__(self) -> None:
        self.connection = h11.Connection(h11.CLIENT)
        self.decoder = SSEDecoder()
        self.events: list[Event] = []
        self.received = 0
        self.eof = False
        self.outcome = ""  # "end": a clean chunked end; "closed": the server closed instead

    async def read(self, sock: trio.socket.SocketType, *, until_received: int = -1) -> None:
        """Read until the response ends (or ``until_received`` bytes came)."""
        await trio.lowlevel.checkpoint()
        while not self.outcome and (until_received < 0 or self.received < until_received):
            try:
                event = self.connection.next_event()
            except h11.RemoteProtocolError:
                # Raised on bad framing too: only after the peer closed is it a cut.
                assert self.eof, "malformed chunk framing"
                self.outcome = "closed"
                return
            if event is h11.NEED_DATA:
                try:
                    data = await sock.recv(4096)
                except ConnectionResetError:
                    data = b""
                self.received += len(data)
                self.eof = not data
                self.connection.receive_data(data)
            elif isinstance(event, h11.Data):
                self.events += self.decoder.feed(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                self.outcome = "end"


@asynccontextmanager
async def open_raw(
    port: int, path: str = "/"
) -> AsyncIterator[tuple[trio.socket.SocketType, RawResponse]]:
    """A client with a small receive buffer that sent ``GET path`` (HTTP/1.1)."""
    response = RawResponse()
    with trio.socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await sock.connect(("127.0.0.1", port))
        request = h11.Request(method="GET", target=path, headers=[("host", "x")])
        await sock.send(response.connection.send(request) or b"")
        await sock.send(response.connection.send(h11.EndOfMessage()) or b"")
        yield sock, response


def assert_intact(events: list[Event], size: int) -> None:
    assert [e.id for e in events] == [str(i) for i in range(len(events))]
    for i, event in enumerate(events):
        assert event.data == payload(i, size), f"event {i} is corrupt"


# -- DirectBody on a plain loopback connection --------------------------------------------


@asynccontextmanager
async def open_loopback() -> AsyncIterator[tuple[trio.SocketStream, trio.socket.SocketType]]:
    """(server side stream, client socket), both with small kernel buffers (4 KiB)."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    async with listeners[0] as listener:
        with trio.socket.socket() as client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            await client.connect(listener.socket.getsockname())
            async with await listener.accept() as server:
                server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
                yield server, client


async def receive_exactly(client: trio.socket.SocketType, size: int) -> bytes:
    data = bytearray()
    with trio.fail_after(SAFETY):  # a safety bound: a short count must fail, not hang
        await trio.lowlevel.checkpoint()
        while len(data) < size:
            more = await client.recv(size - len(data))
            assert more, "the connection closed early"
            data += more
    return bytes(data)


async def test_a_partial_write_holds_the_lock_and_send_rest_finishes_the_chunk() -> None:
    data = payload(1, 1024 * 1024).encode()
    chunk = b"%x\r\n%b\r\n" % (len(data), data)
    lock = trio.Lock()
    async with open_loopback() as (server, client):
        direct = DirectBody(server, lock)
        rest = direct.write_now(data)
        assert rest is not None
        assert 0 < len(rest) < len(chunk)
        assert lock.statistics().owner is trio.lowlevel.current_task()
        # Locked: nothing else may go out before the rest, not even a direct write.
        later = direct.write_now(b"next")
        assert later is not None
        assert bytes(later) == b"4\r\nnext\r\n"
        received: list[bytes] = []
        async with trio.open_nursery() as nursery:

            async def read_all() -> None:
                received.append(await receive_exactly(client, len(chunk) + 9))

            nursery.start_soon(read_all)
            await direct.send_rest(rest)  # the task that holds the lock since write_now
            assert not lock.locked()
            await direct.send_rest(later)  # not the owner: acquires the lock itself
        assert not lock.locked()
        assert received == [chunk + b"4\r\nnext\r\n"]


async def test_a_full_socket_buffer_leaves_the_whole_chunk_to_send_rest() -> None:
    lock = trio.Lock()
    async with open_loopback() as (server, client):
        filler = 0
        for _ in range(1000):  # until the kernel takes nothing more
            try:
                filler += os.write(server.socket.fileno(), b"f" * 65536)
            except BlockingIOError:
                break
        direct = DirectBody(server, lock)
        rest = direct.write_now(b"data")  # BlockingIOError inside: nothing written
        assert rest is not None
        assert bytes(rest) == b"4\r\ndata\r\n"
        assert not lock.locked()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(direct.send_rest, rest)
            assert await receive_exactly(client, filler) == b"f" * filler
            assert await receive_exactly(client, 9) == b"4\r\ndata\r\n"
        assert not lock.locked()


async def test_a_closed_connection_is_never_written_to_again() -> None:
    lock = trio.Lock()
    async with open_loopback() as (server, client):
        direct = DirectBody(server, lock)
        assert direct.write_now(b"") is None  # an empty chunk would end the body: nothing
        assert direct.write_now(b"b" * 300) is None  # the kernel took it all at once
        assert await receive_exactly(client, 307) == b"12c\r\n" + b"b" * 300 + b"\r\n"
        await server.aclose()
        assert server.socket.fileno() == -1
        # The number the socket had may already belong to another connection.
        async with open_loopback() as (other_server, other_client):
            with pytest.raises(OSError, match="Bad file descriptor") as raised:
                direct.write_now(b"stray")
            assert raised.value.errno == errno.EBADF
            assert not lock.locked()
            with pytest.raises(trio.ClosedResourceError):
                await direct.send_rest(memoryview(b"5\r\nstray\r\n"))
            assert not lock.locked()
            await other_server.send_all(b"own")
            assert await receive_exactly(other_client, 3) == b"own"
        assert await client.recv(10) == b""  # closed, and nothing was written to it


# -- direct_body behind Hypercorn's send ----------------------------------------------------


async def test_direct_body_is_found_once_the_response_started_and_through_header_send() -> None:
    found: dict[str, object] = {}
    clients: list[object] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        async def wrapped(message: Message) -> None:
            await send(message)

        clients.append(scope["client"])
        found["before"] = direct_body(send)
        header_send = HeaderSend(send, [(b"x-extra", b"1")])
        await header_send(START)
        found["after"] = direct_body(send)
        found["wrapped"] = direct_body(wrapped)
        direct = direct_body(HeaderSend(header_send, []))  # two HeaderSends deep
        assert isinstance(direct, DirectBody)
        for part in (b"hello ", b"direct"):
            rest = direct.write_now(part)
            if rest is not None:
                await direct.send_rest(rest)
        await header_send(END)  # the end goes through ASGI: h11 sees it

    with trio.fail_after(SAFETY):
        async with (
            open_test_server(Router([Route("/", app)])) as server,
            httpx.AsyncClient() as client,
        ):
            first = await client.get(server.url)
            assert isinstance(found.pop("after"), DirectBody)
            assert found == {"before": None, "wrapped": None}
            second = await client.get(server.url)
    for response in (first, second):
        assert response.headers["x-extra"] == "1"
        assert response.headers["transfer-encoding"] == "chunked"
        assert response.content == b"hello direct"
    assert clients[0] == clients[1]  # the connection was reused after a direct body


async def test_http10_client_gets_the_events_unchunked_and_a_proper_end() -> None:
    found: list[DirectBody | None] = []
    app = big_events(3, 64, found)
    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server:
            with trio.socket.socket() as sock:
                await sock.connect(("127.0.0.1", server.port))
                await sock.send(b"GET / HTTP/1.0\r\n\r\n")
                data = b""
                while more := await sock.recv(65536):  # bounded: the server closes
                    data += more
    head, body = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200")
    assert b"transfer-encoding" not in head.lower()
    assert found == [None]
    expected = b"".join(Event(payload(i, 64), id=str(i)).encode() for i in range(3))
    assert body == b":\n\n" + expected


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> TLSCertificate:
    return issue_tls_certificate(tmp_path_factory.mktemp("tls"))


@pytest.mark.parametrize("http2", [True, False])
async def test_tls_uses_asgi_for_http2_and_locked_sends_for_http11(
    certificate: TLSCertificate, http2: bool
) -> None:
    found: list[DirectBody | None] = []
    size = 100 * 1024
    app = big_events(5, size, found)
    with trio.fail_after(SAFETY):
        async with (
            open_test_server(
                app, certfile=certificate.certfile, keyfile=certificate.keyfile
            ) as server,
            httpx.AsyncClient(http2=http2, verify=certificate.client_context()) as client,
            client.stream("GET", server.url) as response,
            open_sse_reader(response) as reader,
        ):
            assert response.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
            assert_intact(await reader.rest(), size)
            assert len(reader.chunks) > 1
    (direct,) = found
    if http2:
        assert direct is None
    else:
        # An SSLStream: write_now never writes (so it wrote nothing here, after the
        # end); send_rest, under the connection's lock, sent every chunk above.
        assert isinstance(direct, DirectBody)
        rest = direct.write_now(b"x")
        assert rest is not None
        assert bytes(rest) == b"1\r\nx\r\n"


async def test_large_events_reach_a_slow_reader_whole_and_in_order() -> None:
    found: list[DirectBody | None] = []
    size = 200 * 1024
    app = big_events(12, size, found)
    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server, open_raw(server.port) as (sock, response):
            await response.read(sock)
    assert response.outcome == "end"
    assert isinstance(found.pop(), DirectBody)
    assert len(response.events) == 12
    assert_intact(response.events, size)


async def test_a_client_reset_mid_chunk_ends_the_stream_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_stream.sse")
    found: list[DirectBody | None] = []
    app = big_events(1000, 256 * 1024, found, send_timeout=30.0)
    with trio.fail_after(SAFETY):  # far shorter than the 30 s send_timeout
        async with open_test_server(app, send_timeout=None) as server:
            async with open_raw(server.port) as (sock, response):
                await response.read(sock, until_received=300 * 1024)  # inside chunk two
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await server.wait_idle()
    assert isinstance(found.pop(), DirectBody)
    assert "the client is gone" in caplog.text
    assert "client not reading" not in caplog.text


async def test_frozen_reader_on_the_direct_path_is_closed_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    found: list[DirectBody | None] = []
    size = 4096  # a few whole events fit in the socket buffers before one is torn
    flood = big_events(100_000, size, found, send_timeout=0.5)  # more than buffers hold

    async def ticks(scope: Scope, receive: Receive, send: Send) -> None:
        async def produce(send_channel: trio.MemorySendChannel[Event]) -> None:
            for i in range(100_000):
                await send_channel.send(Event(str(i)))
                await trio.sleep(0.01)  # a paced producer

        await EventStream(produce)(scope, receive, send)

    router = Router([Route("/flood", flood), Route("/ticks", ticks)])
    with trio.fail_after(SAFETY):
        async with (
            open_test_server(router, send_timeout=None) as server,
            httpx.AsyncClient() as client,
            client.stream("GET", f"{server.url}/ticks") as healthy,
            open_sse_reader(healthy) as reader,
        ):
            await reader.events(1)
            async with open_raw(server.port, "/flood") as (sock, frozen):
                await server.wait_requests_started(2)
                await server.wait_in_flight(1)  # the flood's response ended
                assert "client not reading" in caplog.text
                await reader.events(5)  # the healthy stream goes on
                await frozen.read(sock)  # now read what was sent: bounded by the close
    assert isinstance(found.pop(), DirectBody)
    assert frozen.outcome == "closed"  # no clean end after a torn chunk: closed instead
    assert len(frozen.events) > 0
    assert_intact(frozen.events, size)


async def test_shutdown_during_a_half_written_chunk_never_tears_the_body() -> None:
    size = 512 * 1024
    app = big_events(40, size)
    with trio.fail_after(SAFETY):
        # The reader outlives the server: it reads on through the shutdown.
        async with (
            trio.open_nursery() as nursery,
            open_test_server(app, graceful_timeout=5.0) as server,
        ):
            # Shut down while the reader is in the middle of the second chunk.
            response = await nursery.start(read_slowly, server.port, size * 3 // 2)  # noqa: ASYNC111
    assert response.outcome in {"end", "closed"}
    assert 2 <= len(response.events) < 40  # ended early, by the shutdown
    assert_intact(response.events, size)


async def read_slowly(  # noqa: ASYNC114  a test helper
    port: int, first: int, *, task_status: trio.TaskStatus[RawResponse]
) -> None:
    """Read ``first`` bytes of the response, report, then read until it ends."""
    async with open_raw(port) as (sock, response):
        await response.read(sock, until_received=first)
        task_status.started(response)
        await response.read(sock)
