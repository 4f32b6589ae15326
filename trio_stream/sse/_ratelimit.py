"""`RateLimit`: an ASGI middleware with one token bucket per client (publish endpoints)."""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from dataclasses import dataclass

import trio

from ._asgi import ASGIApp, Receive, Scope, Send, send_plain
from ._limits import ClientKey, client_address

__all__ = [
    "DEFAULT_RATE_LIMIT",
    "DEFAULT_RATE_LIMIT_BURST",
    "DEFAULT_RATE_LIMIT_KEYS",
    "RateLimit",
    "RateLimitStatistics",
]

logger = logging.getLogger("trio_stream.sse")

DEFAULT_RATE_LIMIT = 10.0
"""Requests per second each client may make on average."""

DEFAULT_RATE_LIMIT_BURST = 20
"""Requests a client may make at once (its bucket's size): two seconds' worth."""

DEFAULT_RATE_LIMIT_KEYS = 10_000
"""Clients tracked at most: a bucket is ~100 bytes, so about a MiB in all."""


class _Bucket:
    """A token bucket's state: ``tokens`` as of trio time ``updated``."""

    __slots__ = ("limited", "tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens = tokens
        self.updated = updated
        self.limited = False  # refused since its last admitted request (logs once per run)


@dataclass(frozen=True, slots=True)
class RateLimitStatistics:
    """A snapshot of a :class:`RateLimit`.

    ``allowed`` and ``limited`` (answered 429) requests so far; ``keys``
    clients tracked now, out of ``max_keys``; ``evicted`` buckets dropped to
    make room for a new client while still refilling (those clients got a
    full bucket back: the price of bounded memory).
    """

    allowed: int
    limited: int
    keys: int
    max_keys: int
    evicted: int
    rate: float
    burst: int


class RateLimit:
    """Wraps an ASGI app and limits each client to ``rate`` requests per second.

    A token bucket per client (``key(scope)``, by default
    :func:`client_address`): it holds up to ``burst`` tokens (default
    :data:`DEFAULT_RATE_LIMIT_BURST`), refills at ``rate`` per second (default
    :data:`DEFAULT_RATE_LIMIT`), and each HTTP request takes one. A request that
    finds the bucket empty gets ``429 Too Many Requests`` with
    ``Retry-After`` (whole seconds until a token is back, at least 1) and a
    short text body, without reaching the app; the first refusal of a run is
    logged at WARNING (a client hammering the endpoint does not flood the
    log). Other clients are unaffected. ``lifespan`` and ``websocket``
    scopes pass through. Time is ``trio.current_time()``, so tests can run
    it on a fake clock.

    Bounded memory: at most ``max_keys`` buckets (default
    :data:`DEFAULT_RATE_LIMIT_KEYS`). Buckets are kept least recently used first;
    a bucket that has refilled is the same as none and is dropped as the
    oldest ones are looked at on each request; when a new client arrives at
    ``max_keys``, the least recently used bucket goes even if it is still
    refilling (counted in ``evicted``). No checkpoint of its own besides
    the app's; not thread-safe (one trio run).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        rate: float = DEFAULT_RATE_LIMIT,
        burst: int = DEFAULT_RATE_LIMIT_BURST,
        key: ClientKey = client_address,
        max_keys: int = DEFAULT_RATE_LIMIT_KEYS,
    ) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError("rate must be a finite number of requests per second > 0")
        if burst < 1 or max_keys < 1:
            raise ValueError("burst and max_keys must be >= 1")
        self.app = app
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._key = key
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._allowed = 0
        self._limited = 0
        self._evicted = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI call: take a token, or answer 429 with ``Retry-After``."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = self._key(scope)
        wait = self._take(client, trio.current_time())
        if wait is None:
            self._allowed += 1
            await self.app(scope, receive, send)
            return
        self._limited += 1
        retry_after = max(1, math.ceil(wait))
        bucket = self._buckets[client]
        if not bucket.limited:
            bucket.limited = True
            logger.warning(
                "rate limited %s %s from %s: over %g/s (burst %d); 429, retry after %d s",
                scope.get("method", "?"),
                scope.get("path", "?"),
                client,
                self.rate,
                self.burst,
                retry_after,
            )
        await send_plain(
            send,
            429,
            "too many requests; retry later",
            headers=[(b"retry-after", b"%d" % retry_after)],
        )

    def _take(self, client: str, now: float) -> float | None:
        """Take a token for ``client``: None when allowed, else seconds until one is back."""
        self._drop_idle(now)
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets.popitem(last=False)
                self._evicted += 1
            bucket = self._buckets[client] = _Bucket(float(self.burst), now)
        else:
            self._buckets.move_to_end(client)
            bucket.tokens = min(
                float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate
            )
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            bucket.limited = False
            return None
        return (1.0 - bucket.tokens) / self.rate

    def _drop_idle(self, now: float) -> None:
        # The oldest buckets first: once one has not refilled, the younger
        # ones (used later) may not have either. Two per request keep the map
        # shrinking faster than one new client a request can grow it.
        for _ in range(2):
            if not self._buckets:
                return
            client, bucket = next(iter(self._buckets.items()))
            if bucket.tokens + (now - bucket.updated) * self.rate < self.burst:
                return
            del self._buckets[client]

    def statistics(self) -> RateLimitStatistics:
        """A :class:`RateLimitStatistics` snapshot (no checkpoint)."""
        return RateLimitStatistics(
            allowed=self._allowed,
            limited=self._limited,
            keys=len(self._buckets),
            max_keys=self.max_keys,
            evicted=self._evicted,
            rate=self.rate,
            burst=self.burst,
        )
