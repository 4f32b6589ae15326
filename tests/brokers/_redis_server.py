"""A real ``redis-server`` process for tests: free port, no persistence, stopped by pid.

Readiness is event-driven: a reader thread follows the server's log and the
starter waits for the "Ready to accept connections" line (or the process exit),
so nothing polls or sleeps. Restarting keeps the same port, which is what an
outage looks like to clients; ``keep_data=True`` dumps the dataset first
(``SAVE``) so the new process loads it, the way a persistent or replicated
Redis comes back; ``keep_data=False`` is a crash of a cache-only Redis.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import trio

#: Safety bound for a start or stop (not a timing assertion): a loaded CI
#: machine starts redis-server in milliseconds, so this only ends a hang.
PROCESS_DEADLINE = 20.0
_PORT_ATTEMPTS = 5


class RedisServerError(RuntimeError):
    """redis-server did not start (the log tail is in the message)."""


@dataclass(frozen=True)
class RedisTLSFiles:
    """Certificate files for a TLS-only server (``--tls-port``)."""

    cert_file: Path
    key_file: Path
    ca_file: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` child process on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        program: str,
        workdir: Path,
        *,
        password: str | None = None,
        tls: RedisTLSFiles | None = None,
        unix_socket: bool = False,
    ) -> None:
        self.program = program
        self.workdir = workdir
        self.password = password
        self.tls = tls
        self.socket_path = workdir / "redis.sock" if unix_socket else None
        self.port = 0
        self.log: list[str] = []
        self._process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        """The ``redis://`` (``rediss://``, ``unix://``) URL clients use, with the password."""
        if self.socket_path is not None:
            return f"unix://{self.socket_path}?db=0"
        scheme = "rediss" if self.tls else "redis"
        auth = f":{self.password}@" if self.password else ""
        return f"{scheme}://{auth}127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def _arguments(self) -> list[str]:
        args = [self.program, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        args += ["--dir", str(self.workdir), "--loglevel", "notice", "--logfile", ""]
        if self.password:
            args += ["--requirepass", self.password]
        if self.socket_path is not None:
            args += ["--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        if self.tls:
            args += ["--port", "0", "--tls-port", str(self.port)]
            args += ["--tls-cert-file", str(self.tls.cert_file)]
            args += ["--tls-key-file", str(self.tls.key_file)]
            args += ["--tls-ca-cert-file", str(self.tls.ca_file), "--tls-auth-clients", "no"]
        else:
            args += ["--port", str(self.port)]
        return args

    def start(self) -> None:
        """Start on a free port (first start) or on the same port (restart); wait until ready."""
        if self._process is not None:
            raise RuntimeError("redis-server is already running")
        if self.port:
            self._spawn()
            return
        for attempt in range(_PORT_ATTEMPTS):
            self.port = _free_port()
            try:
                self._spawn()
                return
            except RedisServerError:
                # Another process took the port between probe and bind: try a new one.
                if attempt == _PORT_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _spawn(self) -> None:
        ready = threading.Event()
        process = subprocess.Popen(
            self._arguments(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

        def follow_log() -> None:
            # Drains the pipe for the process's whole life, so redis never blocks on a full pipe.
            assert process.stdout is not None
            with process.stdout:
                for line in process.stdout:
                    self.log.append(line.rstrip("\n"))
                    if "Ready to accept connections" in line:
                        ready.set()
            ready.set()  # EOF: the process exited (a failed start); the caller checks it

        threading.Thread(target=follow_log, daemon=True).start()
        if not ready.wait(PROCESS_DEADLINE) or process.poll() is not None:
            if process.poll() is None:
                process.kill()
            process.wait(PROCESS_DEADLINE)
            tail = "\n".join(self.log[-5:])
            raise RedisServerError(f"redis-server did not start on port {self.port}:\n{tail}")
        self._process = process

    def stop(self, *, keep_data: bool = False) -> None:
        """Stop the process by its pid (SIGTERM, SIGKILL if it hangs).

        ``keep_data=True`` first saves the dataset to ``workdir`` so that the next
        :meth:`start` loads it; otherwise everything is lost, as with a crash.
        """
        process, self._process = self._process, None
        if process is None:
            return
        dump = self.workdir / "dump.rdb"
        if keep_data:
            self.command("SAVE")
        else:
            dump.unlink(missing_ok=True)
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(PROCESS_DEADLINE)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(PROCESS_DEADLINE)

    def restart(self, *, keep_data: bool = False) -> None:
        """Stop, then start again on the same port (see :meth:`stop` for ``keep_data``)."""
        self.stop(keep_data=keep_data)
        self.start()

    async def astop(self, *, keep_data: bool = False) -> None:
        """:meth:`stop` in a worker thread, so the trio loop keeps running meanwhile."""
        await trio.to_thread.run_sync(lambda: self.stop(keep_data=keep_data))

    async def astart(self) -> None:
        """:meth:`start` in a worker thread, so the trio loop keeps running meanwhile."""
        await trio.to_thread.run_sync(self.start)

    def command(self, *args: str) -> bytes:
        """Send one command with a minimal RESP client and return the raw reply line."""
        payload = b""
        for command in ([["AUTH", self.password]] if self.password else []) + [list(args)]:
            payload += f"*{len(command)}\r\n".encode()
            for arg in command:
                payload += f"${len(arg.encode())}\r\n{arg}\r\n".encode()
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=PROCESS_DEADLINE)
        sock: socket.socket = raw
        if self.tls:
            context = ssl.create_default_context(cafile=str(self.tls.ca_file))
            sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
        with sock:
            sock.sendall(payload)
            replies = b""
            while replies.count(b"\r\n") < (2 if self.password else 1):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                replies += chunk
        last = replies.rstrip(b"\r\n").split(b"\r\n")[-1]
        if last.startswith(b"-"):
            raise RedisServerError(f"redis-server refused {args[0]}: {last.decode()}")
        return last
