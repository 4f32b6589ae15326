"""A frozen reader holds a server's shutdown for SHUTDOWN_SEND_GRACE, not for send_timeout."""

from __future__ import annotations

import logging
import socket

import pytest
import trio
import trio.testing

from tests.sse.test_direct_body import big_events
from trio_stream.sse._direct import DirectBody
from trio_stream.sse._writer import SHUTDOWN_SEND_GRACE
from trio_stream.testing import open_test_server

SAFETY = 15  # seconds: a bound on the test, never a wait for something to happen
# Beyond SAFETY: only the shutdown grace ends the send in time (without it the
# test fails after SEND_TIMEOUT, when the shielded send gives up).
SEND_TIMEOUT = 2.0 * SAFETY


async def test_shutdown_cuts_a_frozen_readers_half_written_chunk_after_the_grace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="trio_stream.sse")
    found: list[DirectBody | None] = []
    app = big_events(1000, 256 * 1024, found, send_timeout=SEND_TIMEOUT)
    with trio.fail_after(SAFETY), socket.socket() as frozen:
        started = 0.0
        async with open_test_server(app, send_timeout=None) as server:
            frozen.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            frozen.connect(("127.0.0.1", server.port))
            frozen.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            # Never read: once the buffers are full the writer waits in a
            # shielded send of a half-written chunk, and every task is blocked.
            await trio.testing.wait_all_tasks_blocked(cushion=0.2)
            assert isinstance(found[0], DirectBody)
            started = trio.current_time()
        # The shutdown could not cancel the send; it waited for the grace.
        assert trio.current_time() - started >= SHUTDOWN_SEND_GRACE
    assert "did not complete within 30 s" in caplog.text
