"""``trio-stream tail`` against a real Hypercorn server: output, exit codes, Ctrl-C."""

from __future__ import annotations

import json
import os
import queue
import runpy
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import trio

from tests._processes import reap
from trio_stream.cli import main
from trio_stream.sse._asgi import Receive, Scope, Send, handle_lifespan
from trio_stream.testing import open_test_server

SAFETY = 20  # seconds: a bound on each test, never a wait for something to happen
STREAM = b"id: 1\nevent: greeting\ndata: hello\n\nid: 2\ndata: two\ndata: lines\n\nid\ndata: 3\n\n"


@pytest.fixture
def interactive_ctrl_c() -> Iterator[None]:
    """Ctrl-C raises ``KeyboardInterrupt`` here and in children, as in a terminal.

    A command started in the background by a shell without job control
    (``nohup make test &``) inherits SIGINT *ignored*; Python then installs no
    handler, and neither does trio, nor does a child process (an ignored
    signal stays ignored across exec). Python's own handler, set for the
    test, is reset to the default in a child at exec.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass
class Script:
    """Answers request n with ``answers[n]`` = (status, body); the last one repeats.

    A body of None streams ``data: <n>`` events until the client leaves.
    """

    answers: list[tuple[int, bytes | None]]
    headers: list[dict[str, str]] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await handle_lifespan(receive, send)
            return
        self.headers.append({k.decode(): v.decode() for k, v in scope["headers"]})
        status, body = self.answers[min(len(self.headers), len(self.answers)) - 1]
        content_type = b"text/event-stream" if status == 200 else b"text/plain"
        start = {"type": "http.response.start", "status": status}
        await send(start | {"headers": [(b"content-type", content_type)]})
        if body is not None:
            await send({"type": "http.response.body", "body": body})
            return
        async with trio.open_nursery() as nursery:

            async def watch_disconnect() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch_disconnect)
            for n in range(100_000):  # paced ticker: a live stream for pipe tests
                await send(
                    {"type": "http.response.body", "body": b"data: %d\n\n" % n, "more_body": True}
                )
                await trio.sleep(0.01)


async def run_main(*argv: str) -> int:
    return await trio.to_thread.run_sync(main, list(argv))


async def test_prints_events_then_exits_0_on_204(capsys: pytest.CaptureFixture[str]) -> None:
    app = Script([(200, STREAM), (204, b"")])
    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server:
            assert await run_main("tail", server.url) == 0
    out, err = capsys.readouterr()
    assert out == (
        "event: greeting\nid: 1\ndata: hello\n\n"
        "event: message\nid: 2\ndata: two\ndata: lines\n\n"
        "event: message\ndata: 3\n\n"
    )
    assert "SSEStreamEndedError" in err
    assert "reconnecting" in err
    assert "last-event-id" not in app.headers[1]  # the server reset it


async def test_json_output_is_one_object_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    app = Script([(200, STREAM), (204, b"")])
    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server:
            assert await run_main("tail", "--json", server.url) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == [
        {"id": "1", "event": "greeting", "data": "hello"},
        {"id": "2", "event": "message", "data": "two\nlines"},
        {"id": "", "event": "message", "data": "3"},
    ]


async def test_headers_and_last_event_id_are_sent() -> None:
    app = Script([(204, b"")])
    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server:
            argv = ["tail", server.url, "--last-event-id", "41", "-H", "Authorization: Bearer t"]
            assert await run_main(*argv, "--header", "X-A:b") == 0
    (headers,) = app.headers
    assert headers["last-event-id"] == "41"
    assert headers["authorization"] == "Bearer t"
    assert headers["x-a"] == "b"


async def test_fatal_status_exits_1_with_one_line_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = Script([(404, b"nope")])
    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server:
            assert await run_main("tail", server.url) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("trio-stream tail: error: SSEResponseError:")
    assert "404" in err


async def test_spent_retry_budget_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    app = Script([(503, b"busy")])
    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server:
            assert await run_main("tail", "--max-retries", "0", server.url) == 1
    err = capsys.readouterr().err
    assert "SSERetriesExhaustedError" in err
    assert "503" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["tail"],
        ["tail", "http://x/", "--header", "no-colon"],
        ["tail", "http://x/", "--max-retries", "-1"],
        ["tail", "http://x/", "--max-retries", "many"],
        ["tail", "http://x/", "--last-event-id", "a\nb"],
        [],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "usage:" in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tail", "--help"]) == 0
    assert "Last-Event-ID" in capsys.readouterr().out


def test_bad_url_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tail", "ftp://127.0.0.1/"]) == 1
    assert "UnsupportedProtocol" in capsys.readouterr().err


async def _spawn(url: str, *options: str) -> trio.Process:
    return await trio.lowlevel.open_process(
        [sys.executable, "-m", "trio_stream", "tail", url, *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


async def _read_line(stream: trio.abc.ReceiveStream) -> bytes:
    data = b""
    while True:  # bounded by the test's fail_after
        chunk = await stream.receive_some()
        assert chunk, "the process closed its output early"
        data += chunk
        if b"\n" in data:
            return data.split(b"\n", 1)[0] + b"\n"


async def _read_all(stream: trio.abc.ReceiveStream) -> bytes:
    data = b""
    while chunk := await stream.receive_some():  # bounded by the test's fail_after
        data += chunk
    return data


async def test_python_dash_m_runs_the_cli() -> None:
    app = Script([(200, b"data: via -m\n\n"), (204, b"")])
    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server:
            cmd = [sys.executable, "-m", "trio_stream", "tail", "--json", server.url]
            result = await trio.run_process(cmd, capture_stdout=True, capture_stderr=True)
    assert result.returncode == 0
    assert json.loads(result.stdout) == {"id": "", "event": "message", "data": "via -m"}


@pytest.mark.parametrize("verbose", [False, True])
async def test_a_fatal_error_is_one_line_on_stderr_unless_verbose(verbose: bool) -> None:
    app = Script([(500, b"oops"), (403, b"no")])
    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server:
            process = await _spawn(server.url, *(["--verbose"] if verbose else []))
            try:
                assert process.stderr is not None
                err = (await _read_all(process.stderr)).decode()
                await process.wait()
            finally:
                await reap(process)  # noqa: ASYNC102  reap shields itself, bounded
    assert process.returncode == 1
    lines = err.splitlines()
    assert lines[-1].startswith("trio-stream tail: error: SSEResponseError:")
    assert "403" in lines[-1]
    if verbose:
        assert any(line.startswith("httpx: HTTP Request: GET") for line in lines)
        assert any(line.startswith("trio_stream.sse: ") for line in lines)
    else:
        assert lines[0].startswith("trio-stream tail: SSEServerError:")
        assert "reconnecting in" in lines[0]
        assert len(lines) == 2


@pytest.mark.usefixtures("interactive_ctrl_c")
async def test_ctrl_c_exits_130_quietly() -> None:
    app = Script([(200, None)])
    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server:
            process = await _spawn(server.url)
            try:
                assert process.stdout is not None
                assert process.stderr is not None
                assert await _read_line(process.stdout) == b"event: message\n"
                process.send_signal(signal.SIGINT)
                err = await _read_all(process.stderr)
                await process.wait()
            finally:
                await reap(process)  # noqa: ASYNC102  reap shields itself, bounded
    assert process.returncode == 130
    assert err == b""


async def test_closed_stdout_pipe_exits_quietly() -> None:
    app = Script([(200, None)])
    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server:
            process = await _spawn(server.url)
            try:
                assert process.stdout is not None
                assert process.stderr is not None
                assert await _read_line(process.stdout)
                await process.stdout.aclose()  # like `| head -1`
                err = await _read_all(process.stderr)
                await process.wait()
            finally:
                await reap(process)  # noqa: ASYNC102  reap shields itself, bounded
    assert process.returncode == 0
    assert err == b""


@pytest.mark.usefixtures("interactive_ctrl_c")
def test_ctrl_c_in_process_returns_130(capsys: pytest.CaptureFixture[str]) -> None:
    # main() runs trio in this (the main) thread, where Ctrl-C is delivered;
    # the server runs in its own thread and sends SIGINT once the request is in.
    ready: queue.Queue[tuple[str, trio.lowlevel.TrioToken, trio.Event]] = queue.Queue()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await handle_lifespan(receive, send)
            return
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"data: x\n\n", "more_body": True})
        os.kill(os.getpid(), signal.SIGINT)
        while (await receive())["type"] != "http.disconnect":
            pass

    async def run_server() -> None:
        stop = trio.Event()
        with trio.fail_after(SAFETY):
            async with open_test_server(app) as server:
                ready.put((server.url, trio.lowlevel.current_trio_token(), stop))
                await stop.wait()

    thread = threading.Thread(target=trio.run, args=(run_server,))
    thread.start()
    try:
        url, token, stop = ready.get(timeout=SAFETY)
        try:
            assert main(["tail", url]) == 130
        finally:
            trio.from_thread.run_sync(stop.set, trio_token=token)
    finally:
        thread.join(SAFETY)
    assert capsys.readouterr().err == ""


def test_python_dash_m_modules_call_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for module in ("trio_stream", "trio_stream.cli"):
        monkeypatch.setattr(sys, "argv", ["trio-stream", "tail", "--help"])
        with pytest.raises(SystemExit) as info:
            runpy.run_module(module, run_name="__main__")
        assert info.value.code == 0
        assert "Last-Event-ID" in capsys.readouterr().out


def test_the_console_script_entry_point_is_main() -> None:
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name="trio-stream")
    assert script.load() is main
    assert os.path.basename(script.value.split(":")[0]) == "trio_stream.cli"
