"""Event ids of the Redis backplane: ``<epoch>:<ms>-<seq>``.

``<ms>-<seq>`` is the Redis Streams entry id (strictly increasing per stream).
``<epoch>`` is a random token kept per topic in Redis (created with ``SET NX``
by the first publish, and written into every entry): when Redis loses the
topic's data (a restart without persistence, a flush, an expiry) the next
publish creates a new epoch, so an id issued before the loss — or by another
backplane, or by :class:`MemoryBroker` — is recognised as unknown instead of
being misread as a position in the new stream.
"""

from __future__ import annotations

import re
import secrets
from typing import NamedTuple

__all__ = ["EPOCH_HEX_LENGTH", "RedisPosition", "format_event_id", "new_epoch", "parse_event_id"]

#: 12 hex digits = 48 random bits: two epochs of one topic never collide in practice.
EPOCH_HEX_LENGTH = 12

_EPOCH = re.compile(rf"[0-9a-f]{{{EPOCH_HEX_LENGTH}}}")
_EVENT_ID = re.compile(rf"([0-9a-f]{{{EPOCH_HEX_LENGTH}}}):([0-9]{{1,20}})-([0-9]{{1,20}})")
_STREAM_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")


class RedisPosition(NamedTuple):
    """A position in one topic's stream: the epoch and the entry id as numbers.

    Tuples compare field by field, so within one epoch ``a < b`` means ``a``
    was added before ``b``.
    """

    epoch: str
    ms: int
    seq: int

    @property
    def stream_id(self) -> str:
        """The Redis Streams entry id (``<ms>-<seq>``)."""
        return f"{self.ms}-{self.seq}"

    @property
    def event_id(self) -> str:
        """The id clients see (``<epoch>:<ms>-<seq>``)."""
        return f"{self.epoch}:{self.ms}-{self.seq}"


def new_epoch() -> str:
    """A fresh random epoch token (lowercase hex, :data:`EPOCH_HEX_LENGTH` digits)."""
    return secrets.token_hex(EPOCH_HEX_LENGTH // 2)


def format_event_id(epoch: str, stream_id: str) -> RedisPosition:
    """Build the position of entry ``stream_id`` (``<ms>-<seq>``) under ``epoch``.

    Raises ``ValueError`` if Redis handed back something that is not an entry
    id (a defensive check: the data in Redis is shared with other programs).
    """
    match = _STREAM_ID.fullmatch(stream_id)
    if match is None or _EPOCH.fullmatch(epoch) is None:
        raise ValueError("not a Redis stream entry id")
    return RedisPosition(epoch, int(match[1]), int(match[2]))


def parse_event_id(event_id: str | None) -> RedisPosition | None:
    """Parse a client's last event id; ``None`` when it is not one of ours.

    Never raises: a malformed, foreign or empty id simply means "unknown", and
    the subscription starts live.
    """
    if not event_id:
        return None
    match = _EVENT_ID.fullmatch(event_id)
    if match is None:
        return None
    return RedisPosition(match[1], int(match[2]), int(match[3]))
