"""An incremental parser for ``text/event-stream``: bytes in, :class:`Event` values out.

It implements "interpreting an event stream" from the WHATWG HTML standard
(section 9.2.6): UTF-8 only, CR / LF / CRLF line ends, one leading BOM
dropped, comments, the ``event`` / ``data`` / ``id`` / ``retry`` fields, and
the dispatch steps. It is sans-IO: it never reads a socket, it is fed.
"""

from __future__ import annotations

import codecs
import contextlib
import re

from ._errors import SSEDecodeError
from ._event import Event, _new_object, _set_data, _set_encoded, _set_event, _set_id, _set_retry

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "DEFAULT_MAX_LINE_LENGTH", "SSEDecoder"]

DEFAULT_MAX_LINE_LENGTH = 1024 * 1024
"""Default longest line (characters, terminator excluded) an :class:`SSEDecoder` accepts."""

DEFAULT_MAX_EVENT_SIZE = 16 * 1024 * 1024
"""Default largest data buffer (characters) an :class:`SSEDecoder` accepts for one event."""

_make_event = Event._trusted

# How many chunks of an unterminated line are kept apart before being joined.
_MAX_PENDING_PIECES = 128

# One block of the usual shape: an optional "event: ", an optional "id: " (no
# NUL), an optional "event: " if there was none before the id, then only
# "data: " lines, then the blank line. The id group keeps its "id: " prefix so
# that an empty id (a reset) differs from no id. The last branch takes any
# other block whole. As findall() runs from a line start to just after a blank
# line, one branch or the other matches every block, back to back, in order.
# Possessive quantifiers keep matching linear: nothing is ever re-scanned.
_BLOCK = re.compile(
    r"(?:event: ([^\n]*+)\n)?+"
    r"(id: [^\n\0]*+\n)?+"
    r"(?(1)|(?:event: ([^\n]*+)\n)?+)"
    r"data: ([^\n]*+(?:\ndata: [^\n]*+)*+)\n\n"
    r"|([^\n]*+(?:\n[^\n]++)*+\n)\n"
)


def _check_limit(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value


class SSEDecoder:
    """Turn the bytes of an event stream into :class:`Event` values, incrementally.

    Feed it the body of a ``text/event-stream`` response in chunks of any
    size, split anywhere (inside a UTF-8 sequence, a CRLF pair, a BOM)::

        decoder = SSEDecoder(last_event_id=previous.last_event_id)
        async for chunk in response.aiter_bytes():
            for event in decoder.feed(chunk):
                ...

    Each decoded event carries ``event`` = its type (``"message"`` when the
    stream gave none), ``data`` = its ``data`` lines joined with LF, ``id`` =
    the last event ID in effect when it was dispatched (``""`` when none) and
    ``retry`` = the reconnection time given inside its own field block, if any.
    An event the stream leaves unterminated (no blank line after it) is never
    returned: when the connection ends, drop the decoder and it is discarded,
    as the standard says.

    ``last_event_id`` is the "last event ID string": updated at every dispatch
    step, it is what a client sends as ``Last-Event-ID`` when it reconnects.
    The constructor argument seeds it (and the last event ID buffer) with the
    value carried over from a previous connection, so that events on the new
    connection carry it until the server sends another ``id``. ``retry`` is the
    latest valid reconnection time (milliseconds) the stream sent, or ``None``.

    Memory is bounded: a line longer than ``max_line_length`` characters, or an
    event whose data grows past ``max_event_size`` characters, raises
    :class:`SSEDecodeError` (a ``ValueError``) as soon as the limit is crossed;
    the stream cannot be resynchronised after that, so every later ``feed``
    raises too. Parsing is linear in the input, however it is chunked.

    Pure and synchronous: no I/O, no checkpoints, nothing to cancel.
    """

    __slots__ = (
        "_at_start",
        "_data",
        "_data_size",
        "_decode",
        "_event_retry",
        "_event_type",
        "_failure",
        "_id_buffer",
        "_max_event_size",
        "_max_line_length",
        "_pending",
        "_pending_joined",
        "_pending_size",
        "_skip_lf",
        "last_event_id",
        "retry",
    )

    def __init__(
        self,
        last_event_id: str = "",
        *,
        max_line_length: int = DEFAULT_MAX_LINE_LENGTH,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
    ) -> None:
        if not isinstance(last_event_id, str):
            raise TypeError("last_event_id must be a str")
        if "\0" in last_event_id or "\r" in last_event_id or "\n" in last_event_id:
            raise ValueError("last_event_id may not contain NUL, CR or LF")
        self._max_line_length = _check_limit("max_line_length", max_line_length)
        self._max_event_size = _check_limit("max_event_size", max_event_size)
        #: The "last event ID string": what to send as Last-Event-ID on reconnect.
        self.last_event_id: str = last_event_id
        #: The stream's reconnection time in milliseconds, once it sent one.
        self.retry: int | None = None
        self._decode = codecs.getincrementaldecoder("utf-8")("replace").decode
        self._at_start = True  # a BOM is only dropped before the first character
        self._skip_lf = False  # the last chunk ended with CR: an LF next is its CRLF
        self._pending: list[str] = []  # pieces of an unterminated line (see feed)
        self._pending_size = 0
        self._pending_joined = 0  # leading pieces of _pending that are joined blocks
        self._id_buffer = last_event_id
        self._event_type = ""
        self._event_retry: int | None = None
        # The data buffer as a list of values: "\n".join() of it is the
        # standard's buffer minus its trailing LF, and an empty list is the
        # standard's empty buffer (a lone "data:" line makes it [""]).
        self._data: list[str] = []
        self._data_size = 0  # length of the standard's buffer, LFs included
        self._failure: str | None = None

    def __repr__(self) -> str:
        return f"SSEDecoder(last_event_id={self.last_event_id!r}, retry={self.retry!r})"

    def feed(self, data: bytes) -> list[Event]:
        """Parse the next chunk of the stream; return the events it completed, in order.

        Returns an empty list when the chunk completed no event. Raises
        :class:`SSEDecodeError` when a limit is broken; the events the chunk
        completed before that are on the exception's ``events`` attribute.
        """
        if self._failure is not None:
            raise SSEDecodeError(f"the event stream already failed: {self._failure}")
        text = self._decode(data)
        if not text:
            return []
        if self._at_start:
            self._at_start = False
            if text[0] == "\ufeff":
                text = text[1:]
                if not text:
                    return []
        if self._skip_lf:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
                if not text:
                    return []
        if "\r" in text:
            # A CR ends its line at once (an event must not wait for the next
            # chunk); an LF at the start of the next chunk then belongs to it.
            self._skip_lf = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        end = text.rfind("\n") + 1
        events: list[Event] = []
        try:
            if end:
                if self._pending:
                    self._pending.append(text[:end])
                    region = "".join(self._pending)
                    self._pending.clear()
                    self._pending_size = 0
                    self._pending_joined = 0
                else:
                    region = text if end == len(text) else text[:end]
                # Only a region longer than the limit can hold a line that is.
                if len(region) > self._max_line_length and (
                    max(map(len, region.split("\n"))) > self._max_line_length
                ):
                    raise SSEDecodeError(self._line_too_long())
                self._process(region, events)
            if end < len(text):
                rest = text[end:]
                self._pending.append(rest)
                self._pending_size += len(rest)
                if self._pending_size > self._max_line_length:
                    raise SSEDecodeError(self._line_too_long())
                if len(self._pending) - self._pending_joined > _MAX_PENDING_PIECES:
                    # A line trickling in tiny chunks: each piece is a str with
                    # ~50 bytes of overhead. Joining the pieces since the last
                    # join keeps memory near the line's length; each character
                    # is copied once.
                    start = self._pending_joined
                    self._pending[start:] = ["".join(self._pending[start:])]
                    self._pending_joined += 1
        except SSEDecodeError as exc:
            self._fail(str(exc))
            exc.events = events
            raise
        return events

    def _line_too_long(self) -> str:
        return f"an event stream line is longer than max_line_length={self._max_line_length}"

    def _fail(self, reason: str) -> None:
        # Free what the broken stream holds; later feeds raise.
        self._failure = reason
        self._pending.clear()
        self._data.clear()

    def _process(self, region: str, events: list[Event]) -> None:
        # ``region`` is whole lines, each ending with LF. This is the hot
        # path: blocks of the usual shape (see _BLOCK) are parsed by the
        # regex engine in one findall() call; the rest go line by line.
        pos = 0
        if self._data or self._event_type or self._event_retry is not None:
            # Lines before this region began the current event: finish it first.
            cut = region.find("\n\n")
            if cut < 0:
                self._lines(region[:-1], events)
                return
            self._lines(region[:cut], events)
            self._dispatch(events)
            pos = cut + 2
        end = region.rfind("\n\n", pos) + 2
        if end > 1:
            last_id = self._id_buffer
            max_value = self._max_event_size - 1  # the standard's buffer adds an LF
            # No event can be longer than the text it came from.
            check_size = end - pos > max_value
            append = events.append
            for type1, id_line, type2, value, other in _BLOCK.findall(region, pos, end):
                if other:
                    self._id_buffer = last_id
                    self._lines(other[:-1], events)
                    self._dispatch(events)
                    last_id = self._id_buffer
                    continue
                if "\n" in value:
                    value = value.replace("\ndata: ", "\n")
                if check_size and len(value) > max_value:
                    self._id_buffer = self.last_event_id = last_id
                    raise SSEDecodeError(self._event_too_large())
                if id_line:
                    last_id = id_line[4:-1]
                # Event._trusted(value, type2 or type1 or "message", last_id, None),
                # inlined: one call less per event.
                event = _new_object(Event)
                _set_data(event, value)
                _set_event(event, type2 or type1 or "message")
                _set_id(event, last_id)
                _set_retry(event, None)
                _set_encoded(event, None)
                append(event)
            self._id_buffer = self.last_event_id = last_id
        else:
            end = pos
        if end < len(region):
            self._lines(region[end:-1], events)

    def _event_too_large(self) -> str:
        return f"an event's data is larger than max_event_size={self._max_event_size}"

    def _lines(self, block: str, events: list[Event]) -> None:
        # Lines that are not plain "data: " lines, one by one, as the standard
        # words it. Only the first line of a block can be empty.
        for line in block.split("\n"):
            if not line:
                self._dispatch(events)
                continue
            name, _, value = line.partition(":")
            if value[:1] == " ":
                value = value[1:]
            if name == "data":
                self._data.append(value)
                self._data_size += len(value) + 1
                if self._data_size > self._max_event_size:
                    raise SSEDecodeError(self._event_too_large())
            elif name == "id":
                if "\0" not in value:
                    self._id_buffer = value
            elif name == "event":
                self._event_type = value
            elif name == "retry" and value.isdigit() and value.isascii():
                # More digits than int() accepts (sys.get_int_max_str_digits)
                # cannot be a delay anyone means: the field is ignored.
                with contextlib.suppress(ValueError):
                    self.retry = self._event_retry = int(value)
            # A comment (name == "") or an unknown field: ignored.

    def _dispatch(self, events: list[Event]) -> None:
        self.last_event_id = self._id_buffer
        if self._data:
            events.append(
                _make_event(
                    "\n".join(self._data),
                    self._event_type or "message",
                    self._id_buffer,
                    self._event_retry,
                )
            )
            self._data.clear()
            self._data_size = 0
        self._event_type = ""
        self._event_retry = None
