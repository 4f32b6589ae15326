"""Property tests: SSEDecoder against a literal reading of the standard, and round trips.

Every stream is fed whole, one byte at a time, and cut at random offsets:
the events must not depend on where the network happened to split the bytes.
"""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.protocol._sse_helpers import feed_chunks, split_at
from tests.protocol._sse_reference import reference_decode
from trio_stream.protocol import Event

_FIELD_NAMES = ["data", "id", "event", "retry", "", "foo", "Data", "\ufeffdata", " data"]
_VALUE_TEXT = st.text(
    alphabet=st.sampled_from([*"ab :0123456789", "\0", "\ufeff", "ü", "東", "🎉", "٣", "\t"]),
    max_size=8,
)
_LINE_ENDS = st.sampled_from(["\n", "\r", "\r\n"])


@st.composite
def _lines(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return ""  # a blank line: dispatch
    name = draw(st.sampled_from(_FIELD_NAMES))
    if kind == 1:
        return name  # no colon
    separator = draw(st.sampled_from([":", ": ", ":  "]))
    return name + separator + draw(_VALUE_TEXT)


@st.composite
def _usual_block(draw: st.DrawFn) -> list[str]:
    """A block of the shape servers send (the decoder's fast path), sometimes bent a little."""
    block = []
    for name in ("event", "id", "event"):
        if draw(st.booleans()):
            block.append(f"{name}: {draw(_VALUE_TEXT)}")
    block += [f"data: {draw(_VALUE_TEXT)}" for _ in range(draw(st.integers(1, 4)))]
    if draw(st.integers(0, 3)) == 0:
        block.insert(draw(st.integers(0, len(block))), draw(_lines()))
    return [*block, ""]


@st.composite
def _segment(draw: st.DrawFn) -> list[str]:
    return draw(_usual_block()) if draw(st.booleans()) else [draw(_lines())]


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    """Arbitrary event streams: any fields, line ends, BOMs, invalid UTF-8, unterminated ends."""
    segments = draw(st.lists(_segment(), max_size=20))
    lines = [(line, draw(_LINE_ENDS)) for segment in segments for line in segment]
    text = "".join(line + end for line, end in lines)
    if draw(st.booleans()):
        text += draw(_lines())  # an unterminated last line
    stream = text.encode()
    if draw(st.booleans()):
        stream = b"\xef\xbb\xbf" * draw(st.integers(1, 2)) + stream
    if draw(st.booleans()):
        at = draw(st.integers(0, len(stream)))
        junk = draw(st.sampled_from([b"\xff", b"\xe6\x9d", b"\xc3", b"\xef\xbb"]))
        stream = stream[:at] + junk + stream[at:]
    return stream


_OFFSETS = st.lists(st.integers(0, 600), max_size=25)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), _OFFSETS, st.sampled_from(["", "seed"]))
@example(b"\xef\xbb\xbfdata: a\r\n\r\n", [1, 2, 11, 12], "")
@example(b"data: a\r\n\ndata: b\n\n", [8], "")
@example(b"\ndata: \n\nevent: 0\nevent: \ndata: \n\n", [], "")
def test_decoder_matches_the_standard_for_any_chunking(
    stream: bytes, offsets: list[int], seed: str
) -> None:
    """Any stream, cut anywhere, decodes exactly as a literal reading of the standard does."""
    expected = reference_decode(stream, seed)
    chunkings = [[stream], split_at(stream, offsets), [bytes([b]) for b in stream]]
    for chunks in chunkings:
        events, decoder = feed_chunks(chunks, seed)
        assert events == expected.events
        assert decoder.last_event_id == expected.last_event_id
        assert decoder.retry == expected.retry


# --- Round trips: Event.encode() then SSEDecoder ----------------------------------------

_SAFE_TEXT = st.characters(codec="utf-8")  # no lone surrogates: encodable
_DATA = st.text(alphabet=st.one_of(_SAFE_TEXT, st.sampled_from("\r\n:")), max_size=30)
_NAME = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=8)
_ID = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\r\n\0"),
    max_size=8,
)

events_strategy = st.builds(
    Event,
    data=_DATA,
    event=st.none() | _NAME,
    id=st.none() | _ID,
    retry=st.none() | st.integers(0, 10**12),
)


def _as_decoded(events: list[Event]) -> list[Event]:
    """What a client sees: ids carried over, "message" by default, line breaks as LF."""
    decoded = []
    last_id = ""
    for event in events:
        if event.id is not None:
            last_id = event.id
        data = event.data.replace("\r\n", "\n").replace("\r", "\n")
        decoded.append(Event(data, event=event.event or "message", id=last_id, retry=event.retry))
    return decoded


@settings(max_examples=300)
@given(st.lists(events_strategy, max_size=12), _OFFSETS)
def test_encoded_events_decode_to_themselves(events: list[Event], offsets: list[int]) -> None:
    """Any list of events survives encode -> bytes cut anywhere -> decode."""
    stream = b"".join(event.encode() for event in events)
    expected = _as_decoded(events)
    for chunks in ([stream], split_at(stream, offsets), [bytes([b]) for b in stream]):
        decoded, decoder = feed_chunks(chunks)
        assert decoded == expected
        assert decoder.last_event_id == (expected[-1].id if expected else "")


@settings(max_examples=100)
@given(st.lists(events_strategy, min_size=1, max_size=6), _OFFSETS)
def test_round_trip_with_crlf_line_ends(events: list[Event], offsets: list[int]) -> None:
    """The same events with every LF turned into CRLF (what some servers send) decode the same."""
    stream = b"".join(event.encode() for event in events)
    # Data lines never hold a bare CR or LF once encoded, so this only changes line ends.
    crlf = stream.replace(b"\n", b"\r\n")
    for chunks in ([crlf], split_at(crlf, offsets)):
        decoded, _ = feed_chunks(chunks)
        assert decoded == _as_decoded(events)
