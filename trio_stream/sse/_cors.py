"""`CORS`: an ASGI middleware letting pages of other origins read the event streams."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from ._asgi import ASGIApp, Receive, Scope, Send, header_value, send_plain
from ._direct import HeaderSend

__all__ = [
    "CORS",
    "DEFAULT_CORS_HEADERS",
    "DEFAULT_CORS_MAX_AGE",
    "CORSStatistics",
    "canonical_origin",
]

logger = logging.getLogger("trio_stream.sse")

DEFAULT_CORS_HEADERS = ("Last-Event-ID", "Content-Type")
"""Request headers a cross-origin page may send: the resume id (a reconnecting
``fetch`` sets it) and a JSON body's type (a POST stream, or publishing)."""

DEFAULT_CORS_MAX_AGE = 600
"""Seconds a browser may cache a preflight answer (Chromium caps it at 7,200)."""

# Sent by browsers without asking: allowing them costs nothing.
_SAFELISTED = frozenset({"accept", "accept-language", "content-language"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class CORSStatistics:
    """A snapshot of a :class:`CORS`: preflights ``allowed`` and ``refused`` (403);
    cross-origin requests ``shared`` (CORS headers added) and ``not_shared`` (an
    origin off the list: passed through without them)."""

    preflights_allowed: int
    preflights_refused: int
    shared: int
    not_shared: int


def canonical_origin(origin: str) -> str:
    """``"HTTPS://Example.com:443/"`` → ``"https://example.com"`` (what browsers send).

    ``"*"`` stays as it is; anything but ``http(s)://host[:port]`` (``"null"``
    included) raises ``ValueError``.
    """
    if origin == "*":
        return origin
    parts = urlsplit(origin.strip().lower())
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (
        parts.scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or port == -1
        or parts.path not in {"", "/"}
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise ValueError(f"not an http(s) origin (scheme://host[:port]): {origin!r}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def _tokens(raw: bytes) -> set[str]:
    return {item.strip().lower() for item in raw.decode("latin-1").split(",") if item.strip()}


class CORS:
    """Wraps an ASGI app so that pages on ``allow_origins`` may read its responses.

    Off unless you wrap an app with it: without this middleware no CORS
    header is ever sent, and browsers keep other origins' pages from
    reading the streams. ``allow_origins`` are exact origins
    (``"https://app.example.com"``; normalised: lower case, default port
    dropped) or ``"*"`` for any origin, which is refused with
    ``allow_credentials=True`` (``ValueError``), as is ``"null"`` (the
    origin shared by every sandboxed frame and local file) and anything
    that is not ``scheme://host[:port]``.

    A preflight (``OPTIONS`` with ``Origin`` and
    ``Access-Control-Request-Method``) is answered here, never by the app:
    ``204`` with ``Access-Control-Allow-Origin`` (the request's origin, or
    ``*``), ``-Allow-Methods``, ``-Allow-Headers``, ``-Max-Age``
    (``max_age`` seconds, default :data:`DEFAULT_CORS_MAX_AGE`),
    ``-Allow-Credentials`` when enabled, and ``Vary``; when the origin, the
    method (``allow_methods``, default GET and POST) or one of the headers
    (``allow_headers``, default :data:`DEFAULT_CORS_HEADERS`, plus the
    always-safe ``Accept``, ``Accept-Language``, ``Content-Language``) is
    not allowed: ``403`` with no CORS header, logged at WARNING.

    Any other request goes to the app; when its ``Origin`` is allowed the
    response gets ``Access-Control-Allow-Origin``, ``-Allow-Credentials``
    (when enabled) and ``-Expose-Headers`` (``expose_headers``, when
    given). Every response gets ``Vary: Origin`` (unless any origin is
    allowed), so that a cache never hands one origin's answer to another.
    A request from an origin off the list still reaches the app (CORS
    governs what a page may *read*, not what it may send: protect writes
    with authentication, not with CORS). No checkpoint of its own.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        allow_origins: Iterable[str],
        allow_credentials: bool = False,
        allow_methods: Collection[str] = ("GET", "POST"),
        allow_headers: Collection[str] = DEFAULT_CORS_HEADERS,
        expose_headers: Collection[str] = (),
        max_age: int = DEFAULT_CORS_MAX_AGE,
    ) -> None:
        if isinstance(allow_origins, str):
            raise TypeError("allow_origins is a collection of origins, not one string")
        origins = frozenset(canonical_origin(origin) for origin in allow_origins)
        self._any = "*" in origins
        if self._any and allow_credentials:
            raise ValueError("allow_origins='*' cannot be combined with allow_credentials")
        if max_age < 0:
            raise ValueError("max_age must be >= 0 seconds")
        self.app = app
        self.allow_origins = origins
        self.allow_credentials = allow_credentials
        self._methods = frozenset(method.upper() for method in allow_methods)
        self._headers = frozenset(name.lower() for name in allow_headers) | _SAFELISTED
        preflight = [
            (b"access-control-allow-methods", ", ".join(sorted(self._methods)).encode()),
            (b"access-control-allow-headers", ", ".join(allow_headers).encode()),
            (b"access-control-max-age", b"%d" % max_age),
        ]
        shared = []
        if allow_credentials:
            shared.append((b"access-control-allow-credentials", b"true"))
        if expose_headers:
            shared.append((b"access-control-expose-headers", ", ".join(expose_headers).encode()))
        self._preflight_headers = preflight + shared
        self._shared_headers = shared
        self._vary = [] if self._any else [(b"vary", b"Origin")]
        self._preflights_allowed = 0
        self._preflights_refused = 0
        self._shared = 0
        self._not_shared = 0

    def _allowed_origin(self, origin: bytes) -> bytes | None:
        """The ``Access-Control-Allow-Origin`` value for ``origin``, or None if refused."""
        if self._any:
            return b"*"
        text = origin.decode("latin-1")
        return origin if text in self.allow_origins else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI call: answer a preflight, or pass it on and add the CORS headers."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = header_value(scope, b"origin")
        if origin is None:
            await self.app(scope, receive, self._with_headers(send, []))
            return
        allow = self._allowed_origin(origin)
        request_method = header_value(scope, b"access-control-request-method")
        if scope.get("method") == "OPTIONS" and request_method is not None:
            await self._preflight(scope, send, origin, allow, request_method)
            return
        if allow is None:
            self._not_shared += 1
            await self.app(scope, receive, self._with_headers(send, []))
            return
        self._shared += 1
        headers = [(b"access-control-allow-origin", allow), *self._shared_headers]
        await self.app(scope, receive, self._with_headers(send, headers))

    async def _preflight(
        self, scope: Scope, send: Send, origin: bytes, allow: bytes | None, method: bytes
    ) -> None:
        requested = _tokens(header_value(scope, b"access-control-request-headers") or b"")
        refusal = None
        if allow is None:
            refusal = "origin not allowed"
        elif method.decode("latin-1").strip().upper() not in self._methods:
            refusal = "method not allowed"
        elif not requested <= self._headers:
            refusal = "header not allowed"
        if refusal is not None or allow is None:
            self._preflights_refused += 1
            logger.warning(
                "CORS preflight for %s from %r refused: %s",
                scope.get("path", "?"),
                origin.decode("latin-1")[:200],
                refusal or "origin not allowed",
            )
            await send_plain(send, 403, "CORS request not allowed", headers=self._vary)
            return
        self._preflights_allowed += 1
        vary = (
            b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
            if not self._any
            else b"Access-Control-Request-Method, Access-Control-Request-Headers"
        )
        headers = [
            (b"access-control-allow-origin", allow),
            *self._preflight_headers,
            (b"vary", vary),
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _with_headers(self, send: Send, headers: list[tuple[bytes, bytes]]) -> Send:
        extra = headers + self._vary
        if not extra:
            return send
        # Headers only: the body may still be written directly (see _direct.py).
        return HeaderSend(send, extra)

    def statistics(self) -> CORSStatistics:
        """A :class:`CORSStatistics` snapshot (no checkpoint)."""
        return CORSStatistics(
            preflights_allowed=self._preflights_allowed,
            preflights_refused=self._preflights_refused,
            shared=self._shared,
            not_shared=self._not_shared,
        )
