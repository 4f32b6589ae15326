"""Building coredis clients from a URL: secure TLS defaults, no silent retries, no leaks."""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urlsplit

import anyio
import anyio.abc
import anyio.streams.memory
import coredis
from coredis.connection import BaseConnection, TCPConnection, UnixDomainSocketConnection
from coredis.retry import NoRetryPolicy

__all__ = ["open_client", "redact_url"]

_SCHEMES = ("redis", "rediss", "unix")
_MEMORY_STREAMS = (
    anyio.streams.memory.MemoryObjectSendStream,
    anyio.streams.memory.MemoryObjectReceiveStream,
)


def redact_url(url: str) -> str:
    """``url`` without its password, for log lines and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return parts._replace(netloc=user + netloc).geturl()


def _close_buffers(connection: BaseConnection) -> None:
    # coredis 6 creates a connection's in-memory buffers in __init__ and only
    # closes them once the socket is up: a failed connect (Redis down, TLS
    # refused) leaves them to the garbage collector, which emits a
    # ResourceWarning wherever it happens to run. Closing is idempotent.
    for value in list(vars(connection).values()):
        if isinstance(value, _MEMORY_STREAMS):
            value.close()


class _TCPConnection(TCPConnection):
    async def run(  # noqa: ASYNC114, ASYNC128  coredis's run() calls started()
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        try:
            await super().run(task_status=task_status)
        finally:
            _close_buffers(self)


class _UnixConnection(UnixDomainSocketConnection):
    async def run(  # noqa: ASYNC114, ASYNC128  coredis's run() calls started()
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        try:
            await super().run(task_status=task_status)
        finally:
            _close_buffers(self)


def open_client(
    url: str, ssl_context: ssl.SSLContext | None, **options: Any
) -> coredis.Redis[str]:
    """A coredis client (not yet entered) for ``url``; ``options`` go to its pool.

    ``rediss://`` verifies the server against ``ssl_context``, or the system
    CAs with hostname checks (coredis's own default for ``rediss://`` skips
    the hostname check). Percent-encoded user names and passwords are decoded.
    Commands are never retried behind the caller's back: a failed XADD is
    reported, not possibly duplicated.
    """
    scheme = urlsplit(url).scheme
    if scheme not in _SCHEMES:
        raise ValueError("a Redis URL starts with redis://, rediss:// or unix://")
    if scheme == "rediss":
        options["ssl_context"] = ssl_context or ssl.create_default_context()
    elif ssl_context is not None:
        raise ValueError("ssl_context needs a rediss:// URL")
    pool = coredis.ConnectionPool.from_url(
        url, decode_components=True, decode_responses=True, **options
    )
    unix = issubclass(pool.connection_class, UnixDomainSocketConnection)
    pool.connection_class = _UnixConnection if unix else _TCPConnection
    client: coredis.Redis[str] = coredis.Redis(
        connection_pool=pool, decode_responses=True, retry_policy=NoRetryPolicy()
    )
    return client
