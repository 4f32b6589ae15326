"""The opening handshake as the server's policy hooks see it, and the checks run on it.

Everything here is synchronous and decides *before* the connection is accepted:
what the request looks like (:class:`HandshakeRequest`), whether its Origin is
allowed, and whether there is room for one more connection from its address.
"""

from __future__ import annotations

import http.cookies
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import parse_qsl, urlsplit

__all__ = ["ConnectionLimiter", "HandshakeRequest", "OriginPolicy", "normalize_origin"]

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
# Shared by every request without a query or cookies (most of them): one
# read-only empty mapping instead of two dicts and two proxies per connection.
_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class HandshakeRequest:
    """What a client asked for in its opening handshake, as given to ``authenticate``.

    ``path`` is the request path without the query; ``query`` maps each
    parameter to its first value (``query_string`` has them all); ``headers``
    maps lower-case names to values (repeated headers joined with ", ");
    ``cookies`` holds the parsed ``Cookie`` header; ``client`` is the peer's
    ``(address, port)`` (``None`` when the transport has no address).
    """

    path: str
    query_string: str = ""
    query: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    headers: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    cookies: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    client: tuple[str, int] | None = None
    subprotocols: tuple[str, ...] = ()

    @property
    def origin(self) -> str | None:
        """The ``Origin`` header, or ``None`` when the client sent none (non-browser)."""
        return self.headers.get("origin")

    @classmethod
    def build(
        cls,
        target: str,
        raw_headers: list[tuple[bytes, bytes]],
        client: tuple[str, int] | None,
        subprotocols: tuple[str, ...] = (),
    ) -> HandshakeRequest:
        """Build one from a request target and raw header pairs (names any case)."""
        parts = urlsplit(target)
        headers: dict[str, str] = {}
        for raw_name, raw_value in raw_headers:
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            if name in headers:
                value = headers[name] + ("; " if name == "cookie" else ", ") + value
            headers[name] = value
        query: dict[str, str] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            query.setdefault(key, value)
        cookies = _parse_cookies(headers["cookie"]) if "cookie" in headers else None
        return cls(
            path=parts.path or "/",
            query_string=parts.query,
            query=MappingProxyType(query) if query else _EMPTY,
            headers=MappingProxyType(headers),
            cookies=MappingProxyType(cookies) if cookies else _EMPTY,
            client=client,
            subprotocols=subprotocols,
        )


def _parse_cookies(header: str) -> dict[str, str]:
    jar = http.cookies.SimpleCookie()
    try:
        jar.load(header)
    except http.cookies.CookieError:
        return {}  # a malformed Cookie header is treated as no cookies
    return {name: morsel.value for name, morsel in jar.items()}


def normalize_origin(origin: str) -> str:
    """Canonical form of an origin: lower-case scheme and host, default port dropped.

    ``"HTTPS://Example.com:443/"`` → ``"https://example.com"``. Opaque origins
    (``"null"``) and values that are not URLs come back lower-cased as they are.
    """
    text = origin.strip().lower().rstrip("/")
    parts = urlsplit(text)
    if not parts.scheme or not parts.hostname:
        return text
    try:
        port = parts.port
    except ValueError:
        return text  # a malformed port: leave it, it will not match an allowed origin
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if port is None or port == _DEFAULT_PORTS.get(parts.scheme):
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


class OriginPolicy:
    """An allow-list of origins, the defence against cross-site WebSocket hijacking.

    A request without an ``Origin`` header is allowed (browsers always send
    one; scripts and servers do not, and cannot be tricked into riding a
    user's cookies). A request whose origin is not on the list is refused.
    ``allowed=None`` turns the check off.
    """

    def __init__(self, allowed: Collection[str] | None) -> None:
        self._allowed = None if allowed is None else {normalize_origin(o) for o in allowed}

    def allows(self, origin: str | None) -> bool:
        """True when a request carrying ``origin`` may connect."""
        if self._allowed is None or origin is None:
            return True
        return normalize_origin(origin) in self._allowed


class ConnectionLimiter:
    """Counts open connections, globally and per client address.

    :meth:`admit` returns ``None`` when there is room (and counts the
    connection) or the HTTP status to refuse it with: 503 when the server is
    full, 429 when this address already has ``max_per_client`` connections.
    Every admitted connection must be :meth:`release`\\ d exactly once.
    """

    def __init__(self, max_connections: int, max_per_client: int) -> None:
        if max_connections < 1 or max_per_client < 1:
            raise ValueError("connection limits must be at least 1")
        self.max_connections = max_connections
        self.max_per_client = max_per_client
        self._per_client: dict[str, int] = {}
        self.open = 0
        self.rejected = 0

    def admit(self, address: str) -> int | None:
        """Count a new connection from ``address``, or return the status to reject it."""
        if self.open >= self.max_connections:
            self.rejected += 1
            return 503
        current = self._per_client.get(address, 0)
        if current >= self.max_per_client:
            self.rejected += 1
            return 429
        self._per_client[address] = current + 1
        self.open += 1
        return None

    def release(self, address: str) -> None:
        """Forget one admitted connection from ``address``."""
        remaining = self._per_client[address] - 1
        if remaining:
            self._per_client[address] = remaining
        else:
            del self._per_client[address]  # keep the map as small as the set of live clients
        self.open -= 1
