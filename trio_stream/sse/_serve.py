"""`serve`: run an ASGI app on Hypercorn's trio worker; startable, graceful on cancel."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import socket
from contextvars import ContextVar

import hypercorn.trio
import trio
from hypercorn.config import Config

from ..protocol import TrioStreamError
from ._asgi import ASGIApp, Receive, Scope, Send, send_plain

__all__ = ["ServeError", "current_shutdown_event", "serve"]

logger = logging.getLogger("trio_stream.sse")

_shutdown_event: ContextVar[trio.Event | None] = ContextVar(
    "trio_stream_shutdown_event", default=None
)


class ServeError(TrioStreamError):
    """The HTTP server failed (its startup, a listener, or the lifespan protocol).

    The underlying exception group is its ``__cause__``.
    """


def current_shutdown_event() -> trio.Event | None:
    """The event :func:`serve` sets when a graceful shutdown begins (None outside it).

    Long-lived responses (:class:`EventStream`) watch it to end their streams
    cleanly instead of being cut when the grace period runs out.
    """
    return _shutdown_event.get()


def _listening_socket(host: str, port: int, send_timeout: float | None) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if send_timeout is not None and hasattr(socket, "TCP_USER_TIMEOUT"):
            # Hypercorn writes to the socket inside a shield with no deadline, so
            # an application-level timeout cannot free a write stuck on a reader
            # that stopped reading. TCP_USER_TIMEOUT (inherited by accepted
            # sockets) makes the kernel abort such a connection instead.
            milliseconds = max(1, round(send_timeout * 1000))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, milliseconds)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _config(
    base: Config | None,
    *,
    certfile: str | None,
    keyfile: str | None,
    graceful_timeout: float,
    max_header_size: int,
    keep_alive_timeout: float,
) -> Config:
    config = base if base is not None else Config()
    config.certfile = certfile if certfile is not None else config.certfile
    config.keyfile = keyfile if keyfile is not None else config.keyfile
    config.graceful_timeout = graceful_timeout
    config.shutdown_timeout = graceful_timeout
    config.h11_max_incomplete_size = max_header_size
    config.h2_max_header_list_size = max_header_size
    config.keep_alive_timeout = keep_alive_timeout
    if base is None:  # route Hypercorn's own log lines through logging, not stderr
        config.errorlog = logging.getLogger("trio_stream.sse.hypercorn")
    if config.ssl_enabled:
        config.create_ssl_context()  # fail on a bad certificate before binding
    return config


def _head_size(scope: Scope) -> int:
    """About the size of the request head on the wire: request line and header lines."""
    line = len(scope.get("raw_path") or b"") + len(scope.get("query_string", b"")) + 16
    return line + sum(len(name) + len(value) + 4 for name, value in scope.get("headers", ()))


def _limit_head(app: ASGIApp, max_header_size: int) -> ASGIApp:
    """``app`` behind a check of the request head's size: larger heads get 431.

    Hypercorn's HTTP/1.1 limit (``h11_max_incomplete_size``) applies only
    while a head is incomplete: a head that arrives whole in one read (up to
    64 KiB) passes it. Counting the parsed head here closes that gap.
    """

    async def limited(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _head_size(scope) > max_header_size:
            logger.warning(
                "rejected %s: request head over max_header_size=%d bytes",
                scope.get("method", "?"),
                max_header_size,
            )
            await send_plain(send, 431, "request header fields too large")
            return
        await app(scope, receive, send)

    return limited


async def _run_hypercorn(  # noqa: ASYNC114, ASYNC128  task_status is passed to hypercorn
    app: ASGIApp,
    config: Config,
    stop: trio.Event,
    scope: trio.CancelScope,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    with scope:
        await hypercorn.trio.serve(
            app,  # type: ignore[arg-type]  # hypercorn's own ASGI typing
            config,
            shutdown_trigger=stop.wait,
            task_status=task_status,
            mode="asgi",
        )


async def serve(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    certfile: str | None = None,
    keyfile: str | None = None,
    graceful_timeout: float = 5.0,
    send_timeout: float | None = 30.0,
    max_header_size: int = 16 * 1024,
    keep_alive_timeout: float = 5.0,
    freeze_gc: bool = False,
    config: Config | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` with Hypercorn's trio worker until cancelled.

    Start it with ``url = await nursery.start(serve, app)``: it binds
    ``host:port`` (port 0 picks a free port) and reports its URL, e.g.
    ``"http://127.0.0.1:54321"`` (``https://`` when given ``certfile`` and
    ``keyfile``; HTTP/2 is then offered through ALPN).

    Cancellation is a graceful shutdown: the listener closes, open
    :class:`EventStream` responses end cleanly at once (they watch
    :func:`current_shutdown_event`), other requests get ``graceful_timeout``
    seconds to finish, then the app's lifespan shutdown runs (also bounded by
    ``graceful_timeout``); after that whatever is left is cancelled. The
    shutdown is thus bounded by about ``2 * graceful_timeout``.

    ``send_timeout`` bounds, in the kernel (Linux ``TCP_USER_TIMEOUT``), how
    long written data may stay unacknowledged: a client that stops reading is
    disconnected after it. ``max_header_size`` bounds the request head
    (larger ones get 431). ``config`` is a Hypercorn ``Config`` to start from;
    the keyword arguments override it. A failure of the server itself raises
    :class:`ServeError`.

    ``freeze_gc=True`` is for a process that serves streams and nothing
    else: once the server is listening, a full garbage collection runs and
    every object then alive (the imported modules', some 40,000 of them) is
    moved to the collector's permanent generation (``gc.freeze()``). The
    collector's full passes then walk only what was made since, instead of
    stalling the event loop, and with it every stream, for tens of
    milliseconds (about halves p99 delivery latency in the fan-out
    benchmark). Objects alive at that moment are never collected as cycles
    afterwards; only turn it on where startup objects live as long as the
    process.
    """
    hyper_config = _config(
        config,
        certfile=certfile,
        keyfile=keyfile,
        graceful_timeout=graceful_timeout,
        max_header_size=max_header_size,
        keep_alive_timeout=keep_alive_timeout,
    )
    fd = _listening_socket(host, port, send_timeout).detach()
    hyper_config.bind = [f"fd://{fd}"]  # Hypercorn adopts (and closes) the socket
    hyper_config.insecure_bind = []
    shutting_down = trio.Event()
    stop = trio.Event()
    hyper_scope = trio.CancelScope()
    started = False
    token = _shutdown_event.set(shutting_down)
    try:
        async with trio.open_nursery() as nursery:
            binds: list[str] = await nursery.start(
                _run_hypercorn, _limit_head(app, max_header_size), hyper_config, stop, hyper_scope
            )
            started = True
            if freeze_gc:
                _freeze_startup_objects()
            # From here on, cancelling serve() triggers a graceful shutdown that
            # runs to its own bounded deadline instead of cutting every connection.
            hyper_scope.shield = True
            task_status.started(binds[0])
            try:
                await trio.sleep_forever()
            finally:
                shutting_down.set()
                stop.set()
                hyper_scope.deadline = trio.current_time() + 2 * graceful_timeout + 1.0
    except BaseExceptionGroup as group:
        if group.split(trio.Cancelled)[1] is None:  # pragma: no cover - trio unwraps these
            raise
        logger.error("HTTP server failed", exc_info=group)
        raise ServeError("the HTTP server failed") from group
    finally:
        _shutdown_event.reset(token)
        if not started:
            _close_quietly(fd)


def _freeze_startup_objects() -> None:
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    logger.info("froze %d startup objects out of the collector's full passes", frozen)


def _close_quietly(fd: int) -> None:
    # Hypercorn adopts the listening socket only after a successful startup.
    with contextlib.suppress(OSError):
        os.close(fd)
