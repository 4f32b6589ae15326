"""The `Event` value: one Server-Sent Event, validated once and encoded once."""

from __future__ import annotations

import json as _json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Event"]


def _valid_id(id: str) -> bool:
    # Three C-level searches: an id is checked on every publish.
    return "\n" not in id and "\r" not in id and "\0" not in id


def _split_lines(text: str) -> list[str]:
    # SSE treats CR, LF and CRLF alike; str.splitlines() would also split on
    # \x0b, \x1c, \u2028 and friends, which are ordinary characters in SSE.
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.split("\n")


@dataclass(frozen=True, slots=True, init=False)
class Event:
    """One Server-Sent Event.

    A frozen value, validated at construction so that no field can inject
    another SSE field into the stream:

    * ``event`` may not contain CR or LF;
    * ``id`` may not contain CR, LF or NUL (``""`` is allowed: it resets the
      client's last event id);
    * ``retry`` must be a non-negative ``int`` (milliseconds).

    ``data`` may contain any line breaks: :meth:`encode` writes one ``data:``
    line per line of it, so a decoder gives the text back with its line breaks
    normalised to LF.

    Events received through :class:`SSEDecoder` carry ``id`` = the last event
    id in effect when they were dispatched (``""`` when none) and ``event`` =
    ``"message"`` when the stream gave no type, as the WHATWG spec says.
    """

    data: str = ""
    event: str | None = None
    id: str | None = None
    retry: int | None = None
    _encoded: bytes | None = field(default=None, init=False, repr=False, compare=False)

    # Written by hand rather than generated: a frozen dataclass's __init__
    # sets each field through object.__setattr__, and an Event is built for
    # every publish. Same signature, same checks.
    def __init__(
        self,
        data: str = "",
        event: str | None = None,
        id: str | None = None,
        retry: int | None = None,
    ) -> None:
        if not isinstance(data, str):
            raise TypeError(f"Event data must be str, not {type(data).__name__}")
        if event is not None and ("\n" in event or "\r" in event):
            raise ValueError("Event type may not contain CR or LF")
        if id is not None and not _valid_id(id):
            raise ValueError("Event id may not contain CR, LF or NUL")
        if retry is not None:
            if not isinstance(retry, int) or isinstance(retry, bool):
                raise TypeError("Event retry must be an int (milliseconds)")
            if retry < 0:
                raise ValueError("Event retry may not be negative")
        _set_data(self, data)
        _set_event(self, event)
        _set_id(self, id)
        _set_retry(self, retry)
        _set_encoded(self, None)

    @classmethod
    def json(
        cls,
        obj: Any,
        *,
        event: str | None = None,
        id: str | None = None,
        retry: int | None = None,
        **dumps_kwargs: Any,
    ) -> Event:
        """Build an event whose data is ``obj`` serialised as compact JSON.

        Extra keyword arguments go to :func:`json.dumps` (``default=str``,
        say). Compact separators keep the payload on one ``data:`` line.
        """
        dumps_kwargs.setdefault("separators", (",", ":"))
        dumps_kwargs.setdefault("ensure_ascii", False)
        return cls(_json.dumps(obj, **dumps_kwargs), event=event, id=id, retry=retry)

    def with_id(self, id: str) -> Event:
        """Return a copy of this event carrying ``id`` (the Hub stamps ids this way)."""
        if not _valid_id(id):
            raise ValueError("Event id may not contain CR, LF or NUL")
        return Event._trusted(self.data, self.event, id, self.retry)

    def encode(self) -> bytes:
        """The SSE wire form of this event, ending with the blank line that dispatches it.

        Computed on first use and cached, so an event fanned out to many
        subscribers is encoded once.
        """
        encoded = self._encoded
        if encoded is not None:
            return encoded
        data = self.data
        if self.event is None and self.retry is None and "\n" not in data and "\r" not in data:
            # The common shape (an id and one line of data) in one format.
            if self.id is None:
                encoded = f"data: {data}\n\n".encode()
            else:
                encoded = f"id: {self.id}\ndata: {data}\n\n".encode()
        else:
            parts = []
            if self.event is not None:
                parts.append(f"event: {self.event}\n")
            if self.id is not None:
                parts.append(f"id: {self.id}\n")
            if self.retry is not None:
                parts.append(f"retry: {self.retry}\n")
            if "\n" in data or "\r" in data:
                parts.extend(f"data: {line}\n" for line in _split_lines(data))
            else:
                parts.append(f"data: {data}\n")
            parts.append("\n")
            encoded = "".join(parts).encode("utf-8")
        _set_encoded(self, encoded)
        return encoded

    @classmethod
    def _trusted(cls, data: str, event: str | None, id: str | None, retry: int | None) -> Event:
        # Fast path for values already known to be valid (decoded from a
        # stream, or re-stamped with a checked id): skips the checks. The
        # slots' own setters are the cheapest way past the frozen __setattr__.
        self = _new_object(cls)
        _set_data(self, data)
        _set_event(self, event)
        _set_id(self, id)
        _set_retry(self, retry)
        _set_encoded(self, None)
        return self


# The slots' setters, shared with the decoder's hot loop.
_new_object = object.__new__
_set_data = Event.__dict__["data"].__set__
_set_event = Event.__dict__["event"].__set__
_set_id = Event.__dict__["id"].__set__
_set_retry = Event.__dict__["retry"].__set__
_set_encoded = Event.__dict__["_encoded"].__set__
