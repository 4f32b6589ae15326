"""`DemoConfig`: everything the demo server can be told, checked once at construction."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..sse._cors import canonical_origin

__all__ = ["DemoConfig"]

_MAX_PORT = 65535


@dataclass(frozen=True, slots=True)
class DemoConfig:
    """Settings of the demo server (``trio-stream demo`` builds one from its options).

    * ``host``, ``port`` (HTTP: page, SSE, API) and ``ws_port`` (WebSockets);
      port 0 picks a free one (the running :class:`DemoServer` reports it).
    * ``redis``: a Redis URL for the :class:`RedisBroker` backplane; None (the
      default) keeps topics in an embedded :class:`MemoryBroker`.
    * ``upstream``: an OpenAI-compatible base URL ending in ``/v1``; None uses
      the embedded :class:`LocalTokenSource`. ``model`` is the model name sent
      upstream when a request names none; ``upstream_api_key`` its bearer key.
    * ``token``: when set, every write (publishing, WebSocket messages, jobs,
      LLM answers) needs ``Authorization: Bearer <token>`` (WebSockets:
      ``?token=``); reading stays open.
    * ``ticker_interval``: seconds between ``ticker`` events; 0 disables the ticker.
    * ``allowed_origins``: page origins accepted by the WebSocket endpoint in
      addition to the demo's own (``http://host:port``, plus the loopback
      names when it listens on loopback or on every interface).
    * ``sse_retry``: the ``retry:`` (milliseconds) sent to SSE clients: how soon
      a browser reconnects; ``keepalive_interval``: seconds between keepalives.
    * ``job_steps`` / ``job_duration``: a job's default number of progress
      events and total seconds; ``max_jobs`` bounds the jobs running at once.
    * ``graceful_timeout``: seconds open requests get to finish on shutdown.
    * ``max_body_size``: the largest request body accepted (bytes).
    * ``max_sse_streams`` / ``max_sse_per_client``: open SSE streams in all
      and per client address (over: 503 / 429 with ``Retry-After``). The
      per-address default is generous: many users can share one address
      behind NAT, and the load test opens a thousand streams from loopback.
    * ``publish_rate`` / ``publish_burst``: ``POST /api/topics/{topic}``
      requests per second per client address, and the burst allowed (over:
      429 with ``Retry-After``).
    * ``cors_origins``: page origins (``https://host[:port]``) allowed to read
      the SSE streams and call the API cross-origin; empty (the default): no
      CORS header is ever sent.
    * ``max_stream_lifetime``: seconds after which an SSE stream ends cleanly
      (each stream draws its own, 80-100 % of it) and the browser resumes
      from ``Last-Event-ID``; None (the default): streams live on.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    ws_port: int = 8001
    redis: str | None = None
    upstream: str | None = None
    model: str | None = None
    upstream_api_key: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    ticker_interval: float = 1.0
    allowed_origins: tuple[str, ...] = ()
    sse_retry: int = 1000
    keepalive_interval: float = 15.0
    job_steps: int = 20
    job_duration: float = 6.0
    max_jobs: int = 32
    graceful_timeout: float = 5.0
    max_body_size: int = 1024 * 1024
    max_sse_streams: int = 10_000
    max_sse_per_client: int = 1024
    publish_rate: float = 50.0
    publish_burst: int = 200
    cors_origins: tuple[str, ...] = ()
    max_stream_lifetime: float | None = None

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("host must not be empty")
        for name, port in (("port", self.port), ("ws_port", self.ws_port)):
            if not 0 <= port <= _MAX_PORT:
                raise ValueError(f"{name} must be between 0 and {_MAX_PORT}")
        if self.port and self.port == self.ws_port:
            raise ValueError("port and ws_port must differ")
        if self.token is not None and not self.token.strip():
            raise ValueError("token must not be blank")
        if not (math.isfinite(self.ticker_interval) and self.ticker_interval >= 0):
            raise ValueError("ticker_interval must be a finite number of seconds >= 0")
        if self.upstream is not None and not self.upstream.startswith(("http://", "https://")):
            raise ValueError("upstream must be an http:// or https:// URL ending in /v1")
        if self.sse_retry < 0:
            raise ValueError("sse_retry must be >= 0 milliseconds")
        positive = {
            "keepalive_interval": self.keepalive_interval,
            "job_duration": self.job_duration,
            "graceful_timeout": self.graceful_timeout,
        }
        for name, value in positive.items():
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number of seconds > 0")
        for name, count in (
            ("job_steps", self.job_steps),
            ("max_jobs", self.max_jobs),
            ("max_body_size", self.max_body_size),
            ("max_sse_streams", self.max_sse_streams),
            ("max_sse_per_client", self.max_sse_per_client),
            ("publish_burst", self.publish_burst),
        ):
            if count < 1:
                raise ValueError(f"{name} must be >= 1")
        if not (math.isfinite(self.publish_rate) and self.publish_rate > 0):
            raise ValueError("publish_rate must be a finite number of requests per second > 0")
        lifetime = self.max_stream_lifetime
        if lifetime is not None and not (math.isfinite(lifetime) and lifetime > 0):
            raise ValueError("max_stream_lifetime must be a finite number of seconds > 0")
        for origin in self.cors_origins:
            canonical_origin(origin)  # ValueError for anything but scheme://host[:port]

    @property
    def token_required(self) -> bool:
        """True when writes need the token."""
        return self.token is not None
