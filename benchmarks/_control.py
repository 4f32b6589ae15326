"""The load client's control channel to the server under test (CONTRACT.md).

SSE servers take one plain HTTP/1.1 request per call (``Connection: close``);
WebSocket servers one JSON request per call over a ``/control`` WebSocket.
Every call is awaited under the client's deadlines.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ._wire import (
    OP_PONG,
    OP_TEXT,
    ChunkedDecoder,
    HeadParser,
    WebSocketFrames,
    http_request,
    websocket_frame,
    websocket_request,
)
from .servers._contract import Broadcast

__all__ = ["Control"]


class Control:
    """The control channel: HTTP requests (SSE servers) or a ``/control`` WebSocket."""

    def __init__(self, host: str, port: int, websocket: bool) -> None:
        self.address = (host, port)
        self.websocket = websocket
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.frames = WebSocketFrames()
        self.answers: list[bytes] = []

    async def open(self) -> None:
        """Open the control WebSocket (SSE servers need no open connection)."""
        self.reader, self.writer = await asyncio.open_connection(*self.address)
        self.writer.write(websocket_request("/control", self.host))
        head = HeadParser()
        rest = None
        while rest is None:
            rest = head.feed(await self._read())
        if head.status != 101:
            raise RuntimeError(f"control handshake status {head.status}")
        self.answers += self.frames.feed(rest)

    @property
    def host(self) -> str:
        """``host:port``, for ``Host`` headers."""
        return f"{self.address[0]}:{self.address[1]}"

    async def _read(self) -> bytes:
        assert self.reader is not None
        data = await self.reader.read(65536)
        if not data:
            raise RuntimeError("control connection closed")
        return data

    async def subscribers(self) -> int:
        """How many subscribers the server has registered."""
        if self.websocket:
            answer: object = await self._ws_request({"op": "subscribers"})
        else:
            answer = await self._http_request("GET", "/control/subscribers")
        if not isinstance(answer, int | str):
            raise RuntimeError(f"unexpected subscriber count: {answer!r}")
        return int(answer)

    async def broadcast(self, spec: Broadcast) -> None:
        """Start the server's publisher; raises ``RuntimeError`` if it refuses."""
        if self.websocket:
            request = {"op": "broadcast", "count": spec.count, "size": spec.size}
            answer = await self._ws_request({**request, "rate": spec.rate})
        else:
            query = f"count={spec.count}&size={spec.size}&rate={spec.rate}"
            answer = (await self._http_request("POST", f"/control/broadcast?{query}")).strip()
        if answer != "started":
            raise RuntimeError(f"broadcast refused: {answer!r}")

    async def _ws_request(self, request: dict[str, Any]) -> Any:
        assert self.writer is not None
        self.writer.write(websocket_frame(OP_TEXT, json.dumps(request).encode()))
        while not self.answers:
            self.answers += self.frames.feed(await self._read())
            for ping in self.frames.pings:
                self.writer.write(websocket_frame(OP_PONG, ping))
            self.frames.pings.clear()
            if self.frames.close_received:
                raise RuntimeError("control connection closed by the server")
        # asyncio: no checkpoint is needed when the answer was already buffered.
        return json.loads(self.answers.pop(0))  # noqa: ASYNC910

    async def _http_request(self, method: str, target: str) -> str:
        reader, writer = await asyncio.open_connection(*self.address)
        try:
            writer.write(http_request(method, target, self.host, close=True))
            head = HeadParser()
            rest = None
            while rest is None:
                data = await reader.read(65536)
                if not data:
                    raise RuntimeError(f"{method} {target}: no response")
                rest = head.feed(data)
            if head.headers.get("transfer-encoding", "").lower() == "chunked":
                decoder = ChunkedDecoder()
                body = decoder.feed(rest)
                while not decoder.finished and (data := await reader.read(65536)):
                    body += decoder.feed(data)
            else:
                length = int(head.headers.get("content-length", "-1"))
                body = rest
                while (length < 0 or len(body) < length) and (data := await reader.read(65536)):
                    body += data
            if head.status >= 300:
                raise RuntimeError(f"{method} {target}: status {head.status}")
            return body.decode()
        finally:
            writer.close()
