"""Process orchestration: one pinned server process and one pinned client process per run.

Every run starts a fresh server (so RSS and state never carry over), waits for
its ``READY <port>`` line, runs the load client against it, and kills the
server's process group whatever happened. Every wait has a deadline.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ._scenarios import Scenario, ServerSpec

__all__ = ["Pinning", "check_available", "raise_fd_limit", "run_inproc", "run_one", "stop_all"]

ROOT = Path(__file__).resolve().parent.parent
_READY_DEADLINE = 30.0
_CLIENT_GRACE = 20.0  # beyond the client's own deadline, before it is killed
_KILL_GRACE = 3.0
_STDERR_TAIL = 2000

# Every process started and not yet killed, so that an interrupted run can
# kill them all (they run in sessions of their own: Ctrl-C does not reach them).
_live: set[subprocess.Popen[bytes]] = set()
_live_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Pinning:
    """Which core the server and the client run on; ``None`` when taskset is unusable."""

    server_cpu: int | None
    client_cpu: int | None

    @classmethod
    def detect(cls, server_cpu: int, client_cpu: int) -> Pinning:
        cpus = os.sched_getaffinity(0)
        if (
            shutil.which("taskset")
            and {server_cpu, client_cpu} <= cpus
            and (server_cpu != client_cpu)
        ):
            return cls(server_cpu, client_cpu)
        return cls(None, None)

    @staticmethod
    def prefix(cpu: int | None) -> list[str]:
        """The command prefix that pins a process to ``cpu`` (none for None)."""
        return ["taskset", "-c", str(cpu)] if cpu is not None else []


def raise_fd_limit() -> None:
    """Raise this process's open-file limit to the hard limit; child processes inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def check_available(server: ServerSpec) -> str:
    """Import the server's module here; return "" if it imports, else why it does not."""
    try:
        importlib.import_module(server.module)
    except Exception as exc:  # any failure means "not available", reported as such
        return f"{type(exc).__name__}: {exc}"
    return ""


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    # SIGKILL at once: a graceful shutdown (uvicorn's waits for open streams)
    # is not measured and would only add seconds to every run.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(_KILL_GRACE)


def _drain(stream: IO[bytes]) -> None:
    # Keep reading so a chatty server can never block on a full stdout pipe.
    with contextlib.suppress(OSError, ValueError):
        while stream.read(65536):
            pass


def _wait_ready(process: subprocess.Popen[bytes]) -> int:
    assert process.stdout is not None
    deadline = time.monotonic() + _READY_DEADLINE
    line = b""
    while not line.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or process.poll() is not None:
            raise RuntimeError("server did not report READY")
        readable, _, _ = select.select([process.stdout], [], [], min(remaining, 0.5))
        if readable:
            byte = os.read(process.stdout.fileno(), 1)
            if not byte:
                raise RuntimeError("server closed stdout before READY")
            line += byte
    words = line.decode().split()
    if len(words) != 2 or words[0] != "READY":
        raise RuntimeError(f"unexpected readiness line: {line!r}")
    threading.Thread(target=_drain, args=(process.stdout,), daemon=True).start()
    return int(words[1])


@contextlib.contextmanager
def _server_process(server: ServerSpec, pinning: Pinning) -> Iterator[tuple[int, int, IO[bytes]]]:
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            [*pinning.prefix(pinning.server_cpu), sys.executable, "-m", server.module],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,  # its own process group, killed as a whole
        )
        with _track(process):
            yield process.pid, _wait_ready(process), stderr


def _tail(stream: IO[bytes]) -> str:
    stream.seek(0)
    return stream.read().decode(errors="replace")[-_STDERR_TAIL:]


def run_one(server: ServerSpec, scenario: Scenario, pinning: Pinning) -> dict[str, Any]:
    """One repetition of ``scenario`` against a fresh ``server``; returns the client's result."""
    started = time.monotonic()
    result: dict[str, Any]
    stderr: IO[bytes] | None = None
    try:
        with _server_process(server, pinning) as (pid, port, stderr):
            ready = time.monotonic()
            job = {
                "host": "127.0.0.1",
                "port": port,
                "server_pid": pid,
                "transport": server.transport,
                "mode": scenario.mode,
                "connections": scenario.connections,
                "count": scenario.count,
                "size": scenario.size,
                "rate": scenario.rate,
                "latency": scenario.latency,
                "deadline": scenario.deadline,
                "connect_deadline": scenario.connect_deadline,
                "warmup": scenario.warmup,
                "settle": scenario.settle,
            }
            limit = scenario.deadline + scenario.connect_deadline + _CLIENT_GRACE
            result = _run_client(job, pinning, limit)
            result["startup_s"] = ready - started
            result["client_s"] = time.monotonic() - ready
            if not result.get("complete"):
                result["server_stderr"] = _tail(stderr)
    except (RuntimeError, OSError) as exc:
        result = {"complete": False, "error": f"{type(exc).__name__}: {exc}"}
        if stderr is not None:
            result["server_stderr"] = _tail(stderr)
    result.update(server=server.name, scenario=scenario.key, seconds=time.monotonic() - started)
    return result


def _run_client(job: dict[str, Any], pinning: Pinning, deadline: float) -> dict[str, Any]:
    command = [*pinning.prefix(pinning.client_cpu), sys.executable, "-m", "benchmarks._client"]
    status, stdout, stderr = _communicate(command, json.dumps(job).encode(), deadline)
    if status is None:
        return {"complete": False, "error": "client killed at the harness deadline"}
    lines = stdout.decode().strip().splitlines()
    if status or not lines:
        return {
            "complete": False,
            "error": f"client exit status {status}",
            "client_stderr": stderr.decode(errors="replace")[-_STDERR_TAIL:],
        }
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _communicate(
    command: list[str], data: bytes, deadline: float
) -> tuple[int | None, bytes, bytes]:
    """Run ``command`` in a process group of its own: (exit status or None on timeout, out, err).

    The whole group is killed at the end, so that nothing it started outlives it.
    """
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    with _track(process):
        try:
            stdout, stderr = process.communicate(data, timeout=deadline)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            stdout, stderr = process.communicate()
            return None, stdout, stderr
    return process.returncode, stdout, stderr


@contextlib.contextmanager
def _track(process: subprocess.Popen[bytes]) -> Iterator[None]:
    with _live_lock:
        _live.add(process)
    try:
        yield
    finally:
        _kill_group(process)
        with _live_lock:
            _live.discard(process)


def stop_all() -> None:
    """Kill every server, client and module process still running (on Ctrl-C or SIGTERM)."""
    with _live_lock:
        processes = list(_live)
    for process in processes:
        _kill_group(process)


def run_inproc(name: str, quick: bool, cpu: int | None, deadline: float) -> dict[str, Any]:
    """Run ``benchmarks.<name>.run()`` in a subprocess (on ``cpu``); its dict, or why it failed."""
    command = [*Pinning.prefix(cpu), sys.executable, "-m", "benchmarks._inproc"]
    command += [name, "--quick"] if quick else [name]
    status, stdout, stderr = _communicate(command, b"", deadline)
    if status is None:
        return {"error": f"did not finish within {deadline:.0f} s"}
    lines = stdout.decode().strip().splitlines()
    if status or not lines:
        tail = stderr.decode(errors="replace").strip().splitlines()[-1:]
        return {"error": tail[0] if tail else f"exit status {status}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result
