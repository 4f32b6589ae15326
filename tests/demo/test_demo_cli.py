"""``trio-stream demo``: URLs printed, graceful exit 0 on SIGINT/SIGTERM, startup failures."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys

import httpx
import pytest
import trio

from tests._processes import read_until, reap
from tests.demo._demo_helpers import SAFETY
from trio_stream.cli import main
from trio_stream.cli._demo import run_demo
from trio_stream.demo import DemoConfig

_URL = re.compile(r"^\s+(?P<name>\w+)\s+(?P<url>\S+)$", re.MULTILINE)


class _Output:
    """A text stream that remembers what was written and wakes a waiter on a marker."""

    def __init__(self, marker: str) -> None:
        self.text = ""
        self.marker = marker
        self.seen = trio.Event()

    def write(self, text: str) -> int:
        self.text += text
        if self.marker in self.text:
            self.seen.set()
        return len(text)

    def flush(self) -> None:
        pass


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_demo_command_serves_until_a_signal_then_exits_0(signum: signal.Signals) -> None:
    command = [sys.executable, "-m", "trio_stream", "demo", "--port", "0", "--ws-port", "0"]
    process = await trio.lowlevel.open_process(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        with trio.fail_after(SAFETY):
            printed = (await read_until(process.stdout, b"Press Ctrl-C")).decode()
            urls = {m["name"]: m["url"] for m in _URL.finditer(printed)}
            async with httpx.AsyncClient(timeout=SAFETY) as client:
                health = await client.get(urls["page"] + "healthz")
                page = await client.get(urls["page"])
            process.send_signal(signum)
            await process.wait()
            rest = (await read_until(process.stdout, b"shutting down")).decode()
    finally:
        await reap(process)  # noqa: ASYNC102  reap shields itself, bounded
    assert process.returncode == 0
    assert set(urls) == {"page", "events", "chat", "llm", "metrics"}
    assert urls["chat"].startswith("ws://127.0.0.1:")
    assert urls["chat"].endswith("/ws/chat")
    assert (health.status_code, health.text) == (200, "ok")
    assert page.status_code == 200
    assert f"{signum.name}: shutting down" in rest


async def test_run_demo_prints_urls_and_returns_0_on_sigint() -> None:
    out, err = _Output("Press Ctrl-C"), _Output("\n")
    config = DemoConfig(port=0, ws_port=0, token="s3cret", graceful_timeout=1.0)
    status: list[int] = []

    async def run() -> None:
        status.append(await run_demo(config, out, err))  # type: ignore[arg-type]

    with trio.fail_after(SAFETY):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run)
            await out.seen.wait()
            page = re.search(r"page\s+(\S+)", out.text)
            assert page is not None
            os.kill(os.getpid(), signal.SIGINT)  # caught by run_demo's signal receiver
    assert status == [0]
    assert page[1].endswith("/?token=YOUR_TOKEN")
    assert "s3cret" not in out.text
    assert err.text == ""


async def test_port_in_use_is_one_line_on_stderr_and_exit_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out, err = _Output("never"), _Output("\n")
        with trio.fail_after(SAFETY):
            status = await run_demo(DemoConfig(port=port, ws_port=0), out, err)  # type: ignore[arg-type]
    assert status == 1
    assert err.text.startswith("trio-stream demo: error: OSError:")
    assert err.text.count("\n") == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--ticker-interval", "-1"],
        ["demo", "--port", "8000", "--ws-port", "8000"],
        ["demo", "--upstream", "ftp://example/v1"],
        ["demo", "--port", "70000"],
        ["demo", "--port", "http"],
    ],
    ids=["negative-interval", "same-ports", "bad-upstream", "port-too-big", "port-not-number"],
)
def test_bad_options_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "error" in capsys.readouterr().err
