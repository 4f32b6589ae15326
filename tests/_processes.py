"""A child process a test started: reading its output, cleaning up after it."""

from __future__ import annotations

import trio

REAP_DEADLINE = 5.0
"""Seconds: how long reaping may take, even while the test is being cancelled."""


async def reap(process: trio.Process) -> None:
    """Kill ``process`` if it still runs, wait for it, close its pipes (shielded, bounded)."""
    with trio.move_on_after(REAP_DEADLINE) as scope:
        scope.shield = True
        if process.returncode is None:
            process.kill()
        await process.wait()
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe is not None:
                await pipe.aclose()


async def read_until(stream: trio.abc.ReceiveStream, marker: bytes) -> bytes:
    """Read a child's output until ``marker`` appears (bounded by the caller's deadline)."""
    data = b""
    while True:
        chunk = await stream.receive_some()
        assert chunk, f"the process closed its output early: {data!r}"
        data += chunk
        if marker in data:
            return data
