"""Opening one client connection: URL parsing, TCP/TLS, and the WebSocket handshake."""

from __future__ import annotations

import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import trio
from trio_websocket import WebSocketConnection, wrap_client_stream

__all__ = ["Dialer"]


@dataclass(frozen=True, slots=True)
class Dialer:
    """Everything needed to open a connection to one ``ws://`` / ``wss://`` URL."""

    url: str
    secure: bool
    host: str
    port: int
    resource: str
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    subprotocols: tuple[str, ...] = ()
    ssl_context: ssl.SSLContext | None = None
    max_message_size: int = 2**20
    connect_timeout: float = 10.0

    @classmethod
    def parse(
        cls,
        url: str,
        *,
        headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        subprotocols: Sequence[str] = (),
        ssl_context: ssl.SSLContext | None = None,
        max_message_size: int = 2**20,
        connect_timeout: float = 10.0,
    ) -> Dialer:
        """Validate ``url`` and the options; ``ValueError`` for anything unusable."""
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss"):
            raise ValueError("a WebSocket URL must start with ws:// or wss://")
        if not parts.hostname:
            raise ValueError("the WebSocket URL has no host")
        secure = parts.scheme == "wss"
        if ssl_context is not None and not secure:
            raise ValueError("ssl_context needs a wss:// URL")
        if max_message_size < 1 or connect_timeout <= 0:
            raise ValueError("max_message_size and connect_timeout must be positive")
        pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
        resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(
            url=url,
            secure=secure,
            host=parts.hostname,
            port=parts.port or (443 if secure else 80),
            resource=resource,
            headers=[(k.encode("latin-1"), v.encode("latin-1")) for k, v in pairs],
            subprotocols=tuple(subprotocols),
            ssl_context=ssl_context,
            max_message_size=max_message_size,
            connect_timeout=connect_timeout,
        )

    @property
    def host_header(self) -> str:
        """The ``Host`` header value (port omitted when it is the scheme's default)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.secure else 80
        return host if self.port == default else f"{host}:{self.port}"

    async def connect(self, nursery: trio.Nursery) -> tuple[WebSocketConnection, trio.abc.Stream]:
        """Open the transport and complete the handshake within ``connect_timeout``.

        trio-websocket's reader task runs in ``nursery`` (a refused handshake
        surfaces there as ``ConnectionRejected``). The caller owns the
        returned stream and must close it; on failure it is closed here.
        Raises ``OSError``, ``trio.TooSlowError``.
        """
        with trio.fail_after(self.connect_timeout):
            stream = await self._open_stream()
            try:
                ws = await wrap_client_stream(
                    nursery,
                    stream,
                    self.host_header,
                    self.resource,
                    subprotocols=self.subprotocols,
                    extra_headers=self.headers,
                    max_message_size=self.max_message_size,
                )
            except BaseException:
                await trio.aclose_forcefully(stream)
                raise
        return ws, stream

    async def _open_stream(self) -> trio.SocketStream | trio.SSLStream[trio.SocketStream]:
        if not self.secure:
            return await trio.open_tcp_stream(self.host, self.port)
        return await trio.open_ssl_over_tcp_stream(
            self.host,
            self.port,
            ssl_context=self.ssl_context or ssl.create_default_context(),
            https_compatible=True,
        )

    def __str__(self) -> str:
        return self.url
