"""``trio-stream demo`` as real subprocesses sharing one Redis, for the scale-out tests.

Each demo runs ``python -m trio_stream demo --redis URL --port 0 --ws-port 0``
under ``trio.run_process`` in a nursery. Readiness is event-driven: a task
follows the process's output and the starter waits for the URLs it prints
(they appear once both ports listen and the broker answered), so nothing
sleeps. Leaving :func:`open_demos` stops every process still running with
SIGTERM (the demo's graceful shutdown) and SIGKILL only if it hangs; a test
kills one on purpose with :meth:`DemoProcess.kill` (SIGKILL, by its pid).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from urllib.parse import urlsplit

import trio

from trio_stream.testing._groups import raise_single

#: Safety bound on a start or a stop (not a timing assertion): a loaded machine
#: starts the demo in a second or two, so this only ends a hang.
PROCESS_DEADLINE = 30.0

_READY_MARKER = "Press Ctrl-C"
_URL = re.compile(r"^\s+(?P<name>\w+)\s+(?P<url>\S+)$", re.MULTILINE)


class DemoProcess:
    """One ``trio-stream demo`` child process and what it printed.

    ``url`` is its HTTP base (``http://127.0.0.1:<port>``), ``ws_url`` its
    WebSocket base (``ws://127.0.0.1:<ws-port>``); ``output`` everything it
    wrote on stdout and stderr so far (shown when a test fails).
    """

    def __init__(self, name: str, process: trio.Process) -> None:
        self.name = name
        self.process = process
        self.output = ""
        self.urls: dict[str, str] = {}
        self.killed = False
        self._printed = trio.Event()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return self.urls["page"].removesuffix("/")

    @property
    def ws_url(self) -> str:
        return self.urls["chat"].removesuffix("/ws/chat")

    @property
    def port(self) -> int:
        port = urlsplit(self.url).port
        assert port is not None
        return port

    async def follow_output(self) -> None:
        """Read the process's output until it closes; note the URLs once printed."""
        stream = self.process.stdout
        assert stream is not None
        try:
            async with stream:
                async for chunk in stream:
                    self.output += chunk.decode(errors="replace")
                    if not self._printed.is_set() and _READY_MARKER in self.output:
                        self.urls = {m["name"]: m["url"] for m in _URL.finditer(self.output)}
                        self._printed.set()
        finally:
            self._printed.set()  # EOF before the URLs: wait_ready reports the output

    async def wait_ready(self) -> None:
        """Wait until the demo printed its URLs (it serves from then on)."""
        await self._printed.wait()
        assert {"page", "chat"} <= set(self.urls), f"{self.name} did not start:\n{self.output}"

    async def terminate(self) -> None:
        """SIGTERM the process (the demo's graceful shutdown) and wait until it is gone."""
        self.process.terminate()
        await self.process.wait()

    async def kill(self) -> None:
        """SIGKILL the process (a crash: no graceful shutdown) and wait until it is gone."""
        self.killed = True
        os.kill(self.pid, signal.SIGKILL)
        await self.process.wait()


async def _terminate(process: trio.Process) -> None:
    # run_process's deliver_cancel (shielded by trio): SIGTERM, SIGKILL on a hang.
    process.terminate()
    with trio.move_on_after(PROCESS_DEADLINE):
        await process.wait()
    if process.returncode is None:  # pragma: no cover - only a hung demo gets here
        process.kill()


async def _spawn(
    nursery: trio.Nursery, readers: trio.Nursery, name: str, redis_url: str
) -> DemoProcess:
    command = [sys.executable, "-m", "trio_stream", "demo", "--redis", redis_url]
    command += ["--port", "0", "--ws-port", "0", "--ticker-interval", "0"]
    process: trio.Process = await nursery.start(
        partial(
            trio.run_process,
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            check=False,
            deliver_cancel=_terminate,
        )
    )
    demo = DemoProcess(name, process)
    readers.start_soon(demo.follow_output)
    return demo


@asynccontextmanager
async def open_demos(redis_url: str, count: int = 2) -> AsyncIterator[list[DemoProcess]]:
    """Start ``count`` demos on ``redis_url`` (concurrently) and yield them once all serve.

    On a normal exit, every demo not killed by the test must have exited 0
    after SIGTERM (a graceful shutdown), and none may have logged a traceback.
    Their output is printed at exit, so pytest shows it when the test fails.
    """
    demos: list[DemoProcess] = []
    try:
        # Output readers outlive the processes' nursery: they read until EOF, so a
        # demo shutting down never writes into a closed pipe.
        async with trio.open_nursery() as readers, trio.open_nursery() as processes:
            try:
                for index in range(count):
                    name = f"demo {index + 1}"
                    demos.append(await _spawn(processes, readers, name, redis_url))
                with trio.fail_after(PROCESS_DEADLINE):
                    for demo in demos:
                        await demo.wait_ready()
                yield demos
            finally:
                processes.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise_single(group)
    finally:
        for demo in demos:
            print(f"--- {demo.name} (pid {demo.pid}) output:\n{demo.output}")
    for demo in demos:
        assert "Traceback" not in demo.output, demo.name
        if not demo.killed:
            assert demo.process.returncode == 0, f"{demo.name} exited {demo.process.returncode}"
            assert "SIGTERM: shutting down" in demo.output
