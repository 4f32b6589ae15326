"""The SSE id of a multi-topic stream: its position in every topic, in one compact string.

A browser keeps only the last ``id:`` it saw and sends it back as
``Last-Event-ID`` when it reconnects. A stream following several topics
therefore puts its position in *every* topic into each event's id, so that
the server can resume them all with no gap and no duplicate. Format
(version 1)::

    m1;<set>;<index>;<prefix>;<entry>,<entry>,...

* ``m1``: the format and its version;
* ``<set>``: 8 hex digits, the first 4 bytes of BLAKE2b over the stream's
  topic names joined with LF, in request order: binds the id to one topic
  list (an id from another list is recognised as such, never misread);
* ``<index>``: the event's topic, as its 0-based index in that list: what
  a page reads to route the event (``topics[Number(id.split(";")[2])]``);
* one ``<entry>`` per topic, in request order: the topic's position is
  ``<prefix> + <entry>``, percent-decoded, where ``<prefix>`` is the common
  prefix of all positions (ids of one broker share their epoch); ``!``
  means "no position yet" (that topic resumes live). Positions are the
  Hub's event ids, percent-encoded (``urllib.parse.quote``, ``:`` kept), so
  ``;``, ``,`` and ``!`` never appear inside them.

Example: ``m1;1c0ffee5;2;3f9a0c1e-1;04,12,07`` is an event of the third
topic; the stream is at ``3f9a0c1e-104``, ``3f9a0c1e-112`` and
``3f9a0c1e-107`` in its three topics.

Size: at most :func:`max_topics_event_id_length` characters for a given
number of topics, for broker ids up to :data:`MAX_POSITION_LENGTH`
characters (``MemoryBroker`` ids have at most 36, ``RedisBroker`` ids 54).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote

__all__ = [
    "MAX_POSITION_LENGTH",
    "TopicPositions",
    "TopicsEventId",
    "max_topics_event_id_length",
    "topic_set_digest",
]

_VERSION = "m1"
MAX_POSITION_LENGTH = 64
"""Longest (percent-encoded) per-topic position a multi-topic id carries."""

_DIGEST = re.compile(r"[0-9a-f]{8}")
_INDEX = re.compile(r"0|[1-9][0-9]{0,5}")
_ENTRY = re.compile(r"[A-Za-z0-9_.~:%\-]*")


def topic_set_digest(topics: Sequence[str]) -> str:
    """The ``<set>`` field for ``topics`` (order matters)."""
    return hashlib.blake2b("\n".join(topics).encode(), digest_size=4).hexdigest()


def max_topics_event_id_length(topic_count: int) -> int:
    """The longest id a stream of ``topic_count`` topics sends (and accepts back).

    ``m1;`` (3) + set (8) + ``;`` + index (up to 6 digits) + ``;`` + prefix
    (up to 64) + ``;`` + one entry of up to 64 characters per topic, with a
    comma between them: ``84 + 65 * topic_count`` (2,164 for 32 topics; with
    ``MemoryBroker`` ids real ones are nearer ``25 + 8 * topic_count``).
    """
    return 84 + (MAX_POSITION_LENGTH + 1) * topic_count


def _common_prefix(items: list[str]) -> str:
    # The common prefix of all strings is the one of the smallest and the largest.
    low, high = min(items), max(items)
    for i, (a, b) in enumerate(zip(low, high, strict=False)):
        if a != b:
            return low[:i]
    return low


def _quote(position: str) -> str:
    quoted = quote(position, safe=":")
    if len(quoted) > MAX_POSITION_LENGTH:
        raise ValueError(
            f"a Hub event id longer than {MAX_POSITION_LENGTH} characters cannot be "
            "carried by a multi-topic id"
        )
    return quoted


@dataclass(frozen=True, slots=True)
class TopicsEventId:
    """A parsed multi-topic SSE id: the stream's ``topics``, its ``positions``, the ``index``.

    ``positions[i]`` is the Hub event id of the last event of ``topics[i]``
    the stream delivered (or a position it started from), None when it has
    none; ``index`` is the topic of the event that carried the id.
    """

    topics: tuple[str, ...]
    positions: tuple[str | None, ...]
    index: int

    @property
    def topic(self) -> str:
        """The topic of the event that carried this id."""
        return self.topics[self.index]

    def encode(self) -> str:
        """The id's text (see the module documentation for the format)."""
        tracker = TopicPositions(self.topics, self.positions)
        return tracker.encode(self.index)

    @classmethod
    def parse(cls, text: str, topics: Sequence[str]) -> TopicsEventId | None:
        """Parse ``text`` as an id of a stream following ``topics`` (in that order).

        Returns None when it is a well-formed id of another topic list (the
        stream then cannot resume from it); raises ``ValueError`` when it is
        not a multi-topic id at all, or is malformed.
        """
        parts = text.split(";")
        if len(parts) != 5 or parts[0] != _VERSION:
            raise ValueError("not a multi-topic event id")
        _, digest, index_text, prefix, entries_text = parts
        entries = entries_text.split(",")
        if (
            not _DIGEST.fullmatch(digest)
            or not _INDEX.fullmatch(index_text)
            or not _ENTRY.fullmatch(prefix)
            or not all(entry == "!" or _ENTRY.fullmatch(entry) for entry in entries)
        ):
            raise ValueError("malformed multi-topic event id")
        topics = tuple(topics)
        if digest != topic_set_digest(topics):
            return None
        index = int(index_text)
        if len(entries) != len(topics) or index >= len(topics):
            raise ValueError("multi-topic event id does not match its topic list")
        positions: list[str | None] = []
        for entry in entries:
            if entry == "!":
                positions.append(None)
                continue
            try:
                position = unquote(prefix + entry, errors="strict")
            except UnicodeDecodeError:
                raise ValueError("malformed position in multi-topic event id") from None
            if not position or any(c in position for c in "\r\n\0"):
                raise ValueError("malformed position in multi-topic event id")
            positions.append(position)
        return cls(topics, tuple(positions), index)


class TopicPositions:
    """A stream's position in each of its topics, encoded into each event's id (mutable).

    :meth:`advance` records an event of topic ``index``; :meth:`encode`
    builds the id for an event of topic ``index``. Each position is quoted
    once, when it changes.
    """

    __slots__ = ("_digest", "_quoted")

    def __init__(self, topics: Sequence[str], positions: Sequence[str | None]) -> None:
        if len(topics) != len(positions):
            raise ValueError("one position per topic")
        self._digest = topic_set_digest(topics)
        self._quoted = [None if p is None else _quote(p) for p in positions]

    def advance(self, index: int, position: str) -> None:
        """Topic ``index`` is now at ``position`` (an event id of that topic)."""
        self._quoted[index] = _quote(position)

    def position(self, index: int) -> str | None:
        """Topic ``index``'s position, None when it has none."""
        quoted = self._quoted[index]
        return None if quoted is None else unquote(quoted)

    def encode(self, index: int) -> str:
        """The id of an event of topic ``index`` at the current positions."""
        quoted = self._quoted
        present = [q for q in quoted if q is not None]
        prefix = _common_prefix(present) if present else ""
        cut = len(prefix)
        entries = ",".join("!" if q is None else q[cut:] for q in quoted)
        return f"{_VERSION};{self._digest};{index};{prefix};{entries}"
