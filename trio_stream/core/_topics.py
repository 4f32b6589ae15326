"""Topic names: what a valid one looks like, checked in one place."""

from __future__ import annotations

import logging
import re

from ._errors import InvalidTopicError

__all__ = ["MAX_TOPIC_LENGTH", "validate_topic"]

logger = logging.getLogger("trio_stream.core")

#: The longest topic name accepted: long enough for ``jobs.<uuid>`` style
#: names with room to spare, short enough to keep Redis keys and URLs sane.
MAX_TOPIC_LENGTH = 200

# ASCII letters, digits and ``. _ : -``: safe unescaped in a URL path segment,
# a Redis key and a log line, and free of "/" so a route like /sse/{topic}
# needs no decoding rules.
_TOPIC = re.compile(rf"[A-Za-z0-9._:\-]{{1,{MAX_TOPIC_LENGTH}}}")


def validate_topic(name: str) -> str:
    """Return ``name`` unchanged if it is a valid topic name, else raise.

    A valid name has 1 to :data:`MAX_TOPIC_LENGTH` (200) characters, each an
    ASCII letter, digit, ``.``, ``_``, ``:`` or ``-`` (so ``ticker``,
    ``jobs.42`` and ``room:lobby`` are valid; ``""``, ``a b`` and ``a/b`` are
    not).

    Raises :class:`InvalidTopicError` (a ``ValueError``) and logs the rejection
    (logger ``trio_stream.core``) without echoing the untrusted name in full.
    """
    if isinstance(name, str) and _TOPIC.fullmatch(name) is not None:
        return name
    logger.info("rejected an invalid topic name (%s)", _describe(name))
    raise InvalidTopicError(
        f"invalid topic name: use 1 to {MAX_TOPIC_LENGTH} characters of A-Z a-z 0-9 . _ : -"
    )


def _describe(name: object) -> str:
    if not isinstance(name, str):
        return f"type {type(name).__name__}"
    return f"length {len(name)}"
