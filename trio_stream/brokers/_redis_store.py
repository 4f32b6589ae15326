"""Topic histories in Redis Streams, over coredis: the only module that talks to Redis.

Key layout, per topic ``T`` under ``key_prefix`` ``P`` (default ``trio_stream``)::

    P:{T}:stream   a Redis Stream, one entry per event: fields ep (epoch), d (data),
                   and e (event type) / r (retry) when set
    P:{T}:epoch    the topic's epoch token (see ``_redis_ids``)

Topic names cannot contain braces, so ``{T}`` can never make two topics' keys
collide, and it is a Redis Cluster hash tag: both keys of a topic live on one
node, as the publish script requires.

Publishing runs one Lua script, atomically: create the epoch if it is missing
(``SET``-if-absent semantics), ``XADD`` with ``MAXLEN ~ max_events``, trim by
age (``XTRIM MINID ~``) and refresh both keys' expiry to ``max_age``, so an
idle topic disappears from Redis on its own. Every coredis or network failure
is re-raised as :class:`BrokerUnavailableError` (or :class:`BrokerError` for a refusal).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import coredis.exceptions
from coredis.response.types import StreamEntry

from ..core import History
from ..protocol import Event
from ._errors import BrokerError, BrokerUnavailableError
from ._redis_client import open_client, redact_url
from ._redis_ids import RedisPosition, format_event_id, new_epoch

__all__ = ["RedisStore"]

logger = logging.getLogger("trio_stream.brokers")

T = TypeVar("T")

_PUBLISH_SCRIPT = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'ep', epoch, unpack(ARGV, 4))
local max_age = tonumber(ARGV[3])
local now = tonumber(string.match(id, '^(%d+)'))
redis.call('XTRIM', KEYS[2], 'MINID', '~', now - max_age)
redis.call('PEXPIRE', KEYS[1], max_age)
redis.call('PEXPIRE', KEYS[2], max_age)
return {epoch, id}
"""

# Failures that mean "Redis cannot be reached or did not answer in time".
_UNAVAILABLE = (coredis.exceptions.ConnectionError, TimeoutError, OSError)


def _certificate_rejected(error: BaseException) -> bool:
    # coredis wraps the handshake's SSLCertVerificationError a few levels deep.
    seen: BaseException | None = error
    depth = 0
    while seen is not None and depth < 8:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
        depth += 1
    return False


class RedisStore:
    """Stream commands for :class:`RedisBroker`; see the module docstring for the layout.

    Two coredis clients: ``commands`` multiplexes publish/replay/anchor over
    at most ``max_connections`` connections; ``tails`` gives each blocking
    ``XREAD`` its own connection, at most ``max_tails`` at once, so tails can
    never starve publishers of connections.
    """

    def __init__(
        self,
        url: str,
        history: History,
        *,
        key_prefix: str,
        ssl_context: ssl.SSLContext | None,
        connect_timeout: float,
        command_timeout: float,
        tail_block: float,
        max_connections: int,
        max_tails: int,
    ) -> None:
        self.url = redact_url(url)
        self.history = history
        self.key_prefix = key_prefix
        self.tail_block = tail_block
        # A connection that received nothing for a minute is closed and replaced:
        # a NAT or proxy may have dropped it silently, and the next publish would
        # otherwise hang until command_timeout and look like an outage. (Tails
        # hear from Redis every tail_block, so they never idle that long.)
        common: dict[str, Any] = {"connect_timeout": connect_timeout, "max_idle_time": 60}
        self.commands = open_client(
            url,
            ssl_context,
            stream_timeout=command_timeout,
            max_connections=max_connections,
            **common,
        )
        self.tails = open_client(
            url,
            ssl_context,
            # A blocking XREAD answers within tail_block; allow command_timeout on top.
            stream_timeout=tail_block + command_timeout,
            max_connections=max_tails,
            **common,
        )
        self._publish = self.commands.register_script(_PUBLISH_SCRIPT)

    @asynccontextmanager
    async def open(self) -> AsyncIterator[RedisStore]:
        """Enter both clients (their connection pools) for the broker's lifetime.

        coredis requires the pools to be entered by a parent of every task that
        uses them: :meth:`RedisBroker.run` does it before reporting readiness.
        """
        async with self.commands, self.tails:
            yield self

    def stream_key(self, topic: str) -> str:
        """The Redis key of ``topic``'s stream."""
        return f"{self.key_prefix}:{{{topic}}}:stream"

    def epoch_key(self, topic: str) -> str:
        """The Redis key of ``topic``'s epoch token."""
        return f"{self.key_prefix}:{{{topic}}}:epoch"

    async def _call(self, what: str, request: Awaitable[T]) -> T:
        try:
            return await request
        except _UNAVAILABLE as error:
            if _certificate_rejected(error):
                # A configuration error, not an outage: retrying cannot fix it.
                message = f"Redis at {self.url}: TLS certificate verification failed"
                raise BrokerError(message) from error
            detail = str(error) or type(error).__name__
            message = f"Redis at {self.url} failed during {what}: {detail}"
            raise BrokerUnavailableError(message) from error
        except coredis.exceptions.RedisError as error:
            # A refusal (auth, ACL, OOM, wrong key type): Redis is up but says no.
            raise BrokerError(f"Redis at {self.url} refused {what}: {error}") from error

    async def ping(self) -> None:
        """Raise unless Redis answers (used to probe for recovery after an outage)."""
        await self._call("PING", self.commands.ping())

    async def append(self, topic: str, event: Event) -> Event:
        """Add ``event`` to ``topic``'s stream; return it stamped with its new id."""
        fields: list[str] = ["d", event.data]
        if event.event is not None:
            fields += ["e", event.event]
        if event.retry is not None:
            fields += ["r", str(event.retry)]
        max_age_ms = max(1, round(self.history.max_age * 1000))
        max_len = self.history.max_events
        args = [new_epoch(), str(max_len), str(max_age_ms), *fields]
        reply: object = await self._call(
            "publish", self._publish([self.epoch_key(topic), self.stream_key(topic)], args)
        )
        try:
            if not (isinstance(reply, list) and len(reply) == 2):
                raise ValueError("not an [epoch, id] pair")
            position = format_event_id(str(reply[0]), str(reply[1]))
        except ValueError as error:
            # The epoch key holds something else (another program shares the prefix).
            raise BrokerError(f"Redis at {self.url}: unexpected reply to publish") from error
        return event.with_id(position.event_id)

    async def last_stream_id(self, topic: str) -> str:
        """The id of ``topic``'s newest entry, ``"0-0"`` when it has none."""
        key = self.stream_key(topic)
        entries = await self._call("anchor", self.commands.xrevrange(key, "+", "-", count=1))
        return str(entries[0].identifier) if entries else "0-0"

    async def newest(self, topic: str) -> RedisPosition | None:
        """The position of ``topic``'s newest entry (``XREVRANGE ... COUNT 1``), or None."""
        key = self.stream_key(topic)
        raw = await self._call("head", self.commands.xrevrange(key, "+", "-", count=1))
        decoded = self._decode(topic, raw)
        return decoded[0][0] if decoded else None

    async def range_after(
        self, topic: str, start: RedisPosition, *, count: int
    ) -> tuple[bool, list[tuple[RedisPosition, Event]]]:
        """Entries from ``start`` (inclusive) on, at most ``count``.

        Returns ``(found, entries)``: ``found`` says whether the first entry is
        ``start`` itself under the same epoch (proof that nothing between it and
        the rest was trimmed or lost); ``entries`` excludes ``start``.
        """
        key = self.stream_key(topic)
        raw = await self._call("replay", self.commands.xrange(key, start.stream_id, "+", count))
        found = bool(raw) and str(raw[0].identifier) == start.stream_id
        found = found and raw[0].field_values.get("ep") == start.epoch
        return found, self._decode(topic, raw[1:] if found else raw)

    async def read_after(
        self, topic: str, stream_id: str, *, count: int
    ) -> tuple[str, list[tuple[RedisPosition, Event]]]:
        """Block up to ``tail_block`` for entries after ``stream_id`` (a tail's XREAD).

        Returns the new read position and the decoded entries (both unchanged
        when the block timed out with nothing new).
        """
        key = self.stream_key(topic)
        block_ms = max(1, round(self.tail_block * 1000))
        reply = await self._call(
            "tail", self.tails.xread({key: stream_id}, count=count, block=block_ms)
        )
        raw: Sequence[StreamEntry] = reply.get(key, ()) if reply else ()
        if raw:
            stream_id = str(raw[-1].identifier)
        return stream_id, self._decode(topic, raw)

    def _decode(self, topic: str, raw: Sequence[StreamEntry]) -> list[tuple[RedisPosition, Event]]:
        decoded: list[tuple[RedisPosition, Event]] = []
        for entry in raw:
            fields = entry.field_values
            try:
                position = format_event_id(str(fields["ep"]), str(entry.identifier))
                retry = fields.get("r")
                event = Event(
                    str(fields["d"]),
                    event=None if fields.get("e") is None else str(fields["e"]),
                    id=position.event_id,
                    retry=None if retry is None else int(retry),
                )
            except (KeyError, ValueError, TypeError):
                # Not written by this library (the keys are shared): skip it, keep tailing.
                logger.warning("skipped a malformed entry in the stream of topic %r", topic)
                continue
            decoded.append((position, event))
        return decoded
