"""Coverage-guided fuzzing of the WebSocket server's message path with atheris.

    python fuzz/websocket_messages.py -runs=20000

One real ``serve_websockets`` echo server (JSON or MessagePack codec, a
``validate`` hook, a small ``max_message_size``) runs in a trio thread on
127.0.0.1:0. Each input opens a connection with a bare wsproto client and
sends frames built from the input (messages, fragments, or raw bytes after
the handshake). A crash is: a close code outside the documented ones (1002,
1007, 1009), an ERROR log line from trio_stream, a connection that neither
answers nor closes within a bound, or a server that stops accepting.
Not part of ``make test``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import sys
import threading
from functools import partial
from typing import Any

import atheris  # type: ignore[import-untyped]
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Request, TextMessage

with atheris.instrument_imports(include=["trio_stream"]):
    from trio_stream.websocket import JsonCodec, MsgPackCodec, WebSocketPeer, serve_websockets

MAX_SIZE = 1024
BOUND = 10.0  # seconds a connection may stay silent before it counts as a hang
ALLOWED = {None, 1002, 1006, 1007, 1009}  # 1006: wsproto's word for a bare EOF


class _ErrorTrap(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _validate(message: Any) -> Any:
    if not isinstance(message, dict) or "data" not in message:
        raise ValueError("a message is an object with 'data'")
    return message


async def _echo(peer: WebSocketPeer) -> None:
    async for message in peer:
        await peer.send(message)


def _serve_in_thread(codec_name: str, ports: queue.Queue[int]) -> None:
    codec = JsonCodec() if codec_name == "json" else MsgPackCodec()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                partial(
                    serve_websockets,
                    _echo,
                    host="127.0.0.1",
                    port=0,
                    codec=codec,
                    validate=_validate,
                    max_message_size=MAX_SIZE,
                    heartbeat_interval=None,
                    rate_limit=None,
                    close_timeout=1.0,
                )
            )
            ports.put(server.port)

    trio.run(main)


class _Client:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=BOUND)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.sock.sendall(self.ws.send(Request(host="127.0.0.1", target="/")))
        if not any(isinstance(event, AcceptConnection) for event in self._events()):
            raise AssertionError("the server refused a plain handshake")

    def _events(self) -> list[Any]:
        data = self.sock.recv(65536)  # socket.timeout here is a hang: it propagates
        self.ws.receive_data(data or None)
        return list(self.ws.events())

    def send(self, data: bytes) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.sock.sendall(data)

    def close_code(self) -> int | None:
        """Half-close, then read until the server's close frame or EOF."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
            while True:
                events = self._events()
                for event in events:
                    if isinstance(event, CloseConnection):
                        return int(event.code)
                if not events and self.ws.state.name == "CLOSED":
                    return None
        except ConnectionResetError:
            return None
        finally:
            self.sock.close()


def _frames(provider: Any, ws: WSConnection) -> bytes:
    """Up to four messages, text or binary, finished or not (then continued or not)."""
    wire = b""
    for _ in range(provider.ConsumeIntInRange(0, 4)):
        size = provider.ConsumeIntInRange(0, MAX_SIZE + 8)
        finished = provider.ConsumeIntInRange(0, 3) != 0
        try:
            if provider.ConsumeBool():
                text = provider.ConsumeUnicodeNoSurrogates(size)
                wire += ws.send(TextMessage(text, message_finished=finished))
            else:
                chunk = provider.ConsumeBytes(size)
                wire += ws.send(BytesMessage(chunk, message_finished=finished))
        except TypeError:  # the message type switched mid-message: wsproto refuses
            break
    return wire


def test_one_input(data: bytes) -> None:
    """libFuzzer's entry point: one connection, checked against the server's invariants."""
    provider = atheris.FuzzedDataProvider(data)
    client = _Client(PORT)
    client.send(_frames(provider, client.ws))
    client.send(provider.ConsumeBytes(provider.ConsumeIntInRange(0, 64)))
    code = client.close_code()
    if code not in ALLOWED or TRAP.messages:
        raise AssertionError(f"close code {code}, error logs {TRAP.messages}")


TRAP = _ErrorTrap()
PORT = 0


def main() -> None:
    """Start the server thread, then run libFuzzer (``FUZZ_CODEC=msgpack`` for MessagePack)."""
    global PORT
    logging.getLogger("trio_stream").addHandler(TRAP)
    ports: queue.Queue[int] = queue.Queue()
    codec_name = os.environ.get("FUZZ_CODEC", "json")
    threading.Thread(target=_serve_in_thread, args=(codec_name, ports), daemon=True).start()
    PORT = ports.get(timeout=BOUND)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
