"""A literal, slow transcription of the WHATWG event-stream algorithm, for differential tests.

It parses a whole stream at once, character by character, following the
words of the standard (HTML §9.2.5-9.2.6) as closely as Python allows; the
tests check that the fast, incremental :class:`SSEDecoder` agrees with it
however the bytes are chunked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trio_stream.protocol import Event


@dataclass
class ReferenceResult:
    events: list[Event] = field(default_factory=list)
    last_event_id: str = ""
    retry: int | None = None


def reference_decode(stream: bytes, last_event_id: str = "") -> ReferenceResult:
    """Decode a complete stream; an unterminated last line or event is discarded."""
    # "Streams must be decoded using the UTF-8 decode algorithm": one leading
    # BOM is skipped, invalid sequences become U+FFFD.
    text = stream.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    # end-of-line = ( cr lf / cr / lf ); a line without one never ends.
    lines: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\r":
            lines.append("".join(current))
            current = []
            if i + 1 < len(text) and text[i + 1] == "\n":
                i += 1
        elif char == "\n":
            lines.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1

    result = ReferenceResult(last_event_id=last_event_id)
    data_buffer = ""
    event_type_buffer = ""
    last_event_id_buffer = last_event_id
    block_retry: int | None = None
    for line in lines:
        if line == "":
            # Dispatch the event.
            result.last_event_id = last_event_id_buffer
            if data_buffer == "":
                event_type_buffer = ""
                block_retry = None
                continue
            if data_buffer.endswith("\n"):
                data_buffer = data_buffer[:-1]
            result.events.append(
                Event(
                    data_buffer,
                    event=event_type_buffer or "message",
                    id=result.last_event_id,
                    retry=block_retry,
                )
            )
            data_buffer = ""
            event_type_buffer = ""
            block_retry = None
            continue
        if line.startswith(":"):
            continue
        if ":" in line:
            name, value = line.split(":", 1)
            if value.startswith(" "):
                value = value[1:]
        else:
            name, value = line, ""
        if name == "event":
            event_type_buffer = value
        elif name == "data":
            data_buffer += value + "\n"
        elif name == "id":
            if "\0" not in value:
                last_event_id_buffer = value
        elif name == "retry" and value and all(c in "0123456789" for c in value):
            result.retry = block_retry = int(value)
    return result
