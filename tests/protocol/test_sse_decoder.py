"""SSEDecoder against the WHATWG HTML standard, section 9.2.6 "Interpreting an event stream".

Each test quotes the rule it checks. Every stream is decoded whole, one byte
at a time and cut in two at every offset (see ``assert_decodes``).
"""

from __future__ import annotations

from tests.protocol._sse_helpers import assert_decodes, feed_chunks, msg
from trio_stream.protocol import SSEDecoder

# --- Decoding ---------------------------------------------------------------


def test_stream_is_utf8() -> None:
    """Spec: "Streams must be decoded using the UTF-8 decode algorithm" (multi-byte characters)."""
    assert_decodes("data: grüße 東京 🎉\n\n".encode(), [msg("grüße 東京 🎉")])


def test_invalid_utf8_becomes_replacement_character() -> None:
    """The UTF-8 decode algorithm turns each invalid sequence into U+FFFD."""
    assert_decodes(b"data: a\xffb\xe6\x9dc\n\n", [msg("a\ufffdb\ufffdc")])


def test_truncated_utf8_at_end_of_line_becomes_replacement_character() -> None:
    """A sequence cut short by a line end is invalid: U+FFFD, then the line ends as usual."""
    assert_decodes(b"data: \xe6\x9d\n\n", [msg("\ufffd")])


def test_one_leading_bom_is_stripped() -> None:
    """Spec: "The UTF-8 decode algorithm strips one leading UTF-8 Byte Order Mark (BOM)"."""
    assert_decodes(b"\xef\xbb\xbfdata: x\n\n", [msg("x")])


def test_only_one_bom_is_stripped() -> None:
    """Only one BOM is stripped: a second one is part of the first line's field name."""
    # The first line's field name is then "\ufeffdata", an unknown field.
    assert_decodes(b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\ndata: y\n\n", [msg("y")])


def test_bom_is_only_stripped_at_stream_start() -> None:
    """The BOM is *leading*: one later in the stream is an ordinary character."""
    assert_decodes(
        "data: a\n\n\ufeffdata: b\n\ndata: \ufeffc\n\n".encode(), [msg("a"), msg("\ufeffc")]
    )


def test_bom_after_first_feed_is_not_stripped() -> None:
    """A BOM in a later chunk is not leading, even when the first chunk was all BOM."""
    events, _ = feed_chunks([b"\xef\xbb\xbf", b"\xef\xbb\xbfdata: x\n\n", b"data: y\n\n"])
    assert events == [msg("y")]


def test_empty_feeds_change_nothing() -> None:
    """Empty chunks (and chunks that end mid-character) are harmless anywhere."""
    events, _ = feed_chunks([b"", b"\xef", b"", b"\xbb\xbf", b"", b"data: x\r", b"", b"\n\n", b""])
    assert events == [msg("x")]


# --- Lines -------------------------------------------------------------------


def test_lf_cr_and_crlf_all_end_lines() -> None:
    """Spec: "a U+000D CARRIAGE RETURN U+000A LINE FEED (CRLF) character pair, a single U+000A LINE
    FEED (LF) character not preceded by a U+000D CARRIAGE RETURN (CR) character, and a single
    U+000D CARRIAGE RETURN (CR) character not followed by a U+000A LINE FEED (LF) character
    being the ways in which a line can end".
    """
    stream = b"data: a\r\ndata: b\rdata: c\n\r\ndata: d\r\rdata: e\n\n"
    assert_decodes(stream, [msg("a\nb\nc"), msg("d"), msg("e")])


def test_crlf_is_one_line_end_not_two() -> None:
    """CR LF ends one line: it is not a line end followed by an empty line (no early dispatch)."""
    assert_decodes(b"data: a\r\ndata: b\r\n\r\n", [msg("a\nb")])


def test_cr_then_lf_across_chunks_is_one_line_end() -> None:
    """A CRLF split across two chunks still ends a single line."""
    events, _ = feed_chunks([b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"])
    assert events == [msg("a\nb")]


def test_cr_is_processed_at_once() -> None:
    """A CR ends its line when it arrives: the event dispatches without waiting for more bytes."""
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r\r") == [msg("a")]
    assert decoder.feed(b"\ndata: b\r\n\r\n") == [msg("b")]  # that LF ended an empty line


def test_lone_lf_after_cr_chunk_belongs_to_crlf_only_once() -> None:
    """Only the LF right after the CR is skipped; a second LF is an empty line."""
    events, _ = feed_chunks([b"data: a\r", b"\n\n"])
    assert events == [msg("a")]


def test_pending_line_waits_for_its_end() -> None:
    """Lines are processed once they end: a partial line waits for the rest, however long."""
    decoder = SSEDecoder()
    for piece in (b"da", b"ta", b": ", b"he", b"llo"):
        assert decoder.feed(piece) == []
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\n") == [msg("hello")]


# --- Line kinds ----------------------------------------------------------------


def test_blank_line_dispatches() -> None:
    """Spec: "If the line is empty (a blank line): Dispatch the event"."""
    assert_decodes(b"data: a\n\ndata: b\n\n", [msg("a"), msg("b")])


def test_comment_lines_are_ignored() -> None:
    """Spec: "If the line starts with a U+003A COLON character (:): Ignore the line."."""
    stream = b": hello\n:\ndata: a\n: data: no\ndata: b\n\n:only a comment\n\n"
    assert_decodes(stream, [msg("a\nb")])


def test_field_name_is_before_first_colon_and_value_after() -> None:
    """Spec: "Collect the characters on the line before the first U+003A COLON character (:), and
    let field be that string. Collect the characters on the line after the first U+003A COLON".
    """
    assert_decodes(b"data: a:b: c\n\n", [msg("a:b: c")])


def test_one_leading_space_is_removed_from_value() -> None:
    """Spec: "If value starts with a U+0020 SPACE character, remove it from value." (only one)."""
    stream = b"data:a\n\ndata: a\n\ndata:  a\n\ndata:\ta\n\n"
    assert_decodes(stream, [msg("a"), msg("a"), msg(" a"), msg("\ta")])


def test_line_without_colon_is_a_field_with_empty_value() -> None:
    """Spec: "using the whole line as the field name, and the empty string as the field value"."""
    assert_decodes(b"data\n\ndata\ndata\n\n", [msg(""), msg("\n")])


def test_field_names_are_case_sensitive_and_exact() -> None:
    """Spec: "Otherwise: The field is ignored." ("Data", " data" and "data " are not "data")."""
    assert_decodes(b"Data: a\n data: b\ndata : c\ndatas: d\ndata: e\n\n", [msg("e")])


def test_unknown_fields_are_ignored() -> None:
    """Spec: "Otherwise: The field is ignored." (an unknown field alone dispatches nothing)."""
    assert_decodes(b"foo: bar\n\nfoo: bar\ndata: x\n\n", [msg("x")])


# --- Fields -----------------------------------------------------------------------


def test_event_field_sets_type() -> None:
    """Spec: "event": "Set the event type buffer to field value." (the last one wins)."""
    assert_decodes(b"event: a\nevent: b\ndata: x\n\n", [msg("x", event="b")])


def test_last_event_field_wins_even_when_empty() -> None:
    """Spec: "Set the event type buffer to field value." The last one wins, even empty."""
    assert_decodes(b"event: a\nevent:\ndata: x\n\n", [msg("x")])
    assert_decodes(b"event: a\nid: 1\nevent:\ndata: x\n\n", [msg("x", id="1")])
    assert_decodes(b"event:\nid: 1\nevent: b\ndata: x\n\n", [msg("x", event="b", id="1")])


def test_type_defaults_to_message() -> None:
    """Spec: "Initialize event's type attribute to "message"" when the type buffer is empty."""
    assert_decodes(b"event:\ndata: x\n\nevent\ndata: y\n\n", [msg("x"), msg("y")])


def test_event_type_is_reset_after_dispatch() -> None:
    """Spec: "Set the data buffer and the event type buffer to the empty string." (step 7)"""
    assert_decodes(b"event: a\ndata: x\n\ndata: y\n\n", [msg("x", event="a"), msg("y")])


def test_event_type_is_reset_even_when_nothing_is_dispatched() -> None:
    """Spec: "If the data buffer is an empty string, set the data buffer and the event type buffer
    to the empty string and return.".
    """
    assert_decodes(b"event: a\n\ndata: y\n\n", [msg("y")])


def test_data_lines_are_joined_with_lf() -> None:
    """Spec: "Append the field value to the data buffer, then append a single U+000A LINE FEED"."""
    assert_decodes(b"data: a\ndata:\ndata: b\n\n", [msg("a\n\nb")])


def test_trailing_lf_is_removed_from_data() -> None:
    """Spec: "If the data buffer's last character is a U+000A LINE FEED (LF) character, then remove
    the last character from the data buffer." (only that one LF).
    """
    assert_decodes(b"data: a\ndata\n\ndata\ndata\ndata\n\n", [msg("a\n"), msg("\n\n")])


def test_empty_data_line_dispatches_empty_string() -> None:
    """A "data" field makes the buffer non-empty (an LF), so the event fires with data ""."""
    assert_decodes(b"data\n\ndata:\n\ndata: \n\n", [msg(""), msg(""), msg("")])


def test_no_data_no_dispatch() -> None:
    """Spec: "If the data buffer is an empty string ... return." (id/event/retry alone fire
    nothing).
    """
    assert_decodes(b"event: a\n\nid: 1\n\nretry: 5\n\n\n\n", [], last_event_id="1", retry=5)


def test_id_field_sets_last_event_id() -> None:
    """Spec: "If the field value does not contain U+0000 NULL, then set the last event ID
    buffer to the field value"."""
    assert_decodes(b"id: 1\ndata: a\n\n", [msg("a", id="1")], last_event_id="1")


def test_id_containing_nul_is_ignored() -> None:
    """Spec: "Otherwise, ignore the field." (an id with U+0000 leaves the buffer as it was)."""
    stream = b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n"
    assert_decodes(stream, [msg("a", id="1"), msg("b", id="1")], last_event_id="1")


def test_id_carries_over_to_later_events() -> None:
    """Spec: "If an event doesn't have an "id" field, but an earlier event did set the event
    source's last event ID string, then the event's lastEventId field will be set to ... the
    last seen "id" field".
    """
    stream = b"id: 7\ndata: a\n\ndata: b\n\nid: 8\ndata: c\n\n"
    expected = [msg("a", id="7"), msg("b", id="7"), msg("c", id="8")]
    assert_decodes(stream, expected, last_event_id="8")


def test_empty_id_resets_last_event_id() -> None:
    """An "id" field with an empty value sets the buffer to "" (a reset), unlike no id at all."""
    stream = b"id: 7\ndata: a\n\nid\ndata: b\n\nid:\ndata: c\n\nid: \ndata: d\n\n"
    expected = [msg("a", id="7"), msg("b"), msg("c"), msg("d")]
    assert_decodes(stream, expected, last_event_id="")


def test_last_event_id_string_is_updated_at_every_dispatch() -> None:
    """Spec: "Set the last event ID string of the event source to the value of the last event ID
    buffer." is dispatch step 1, before the empty-data check: an id-only block sets it.
    """
    assert_decodes(b"data: a\n\nid: 9\n\n", [msg("a")], last_event_id="9")
    assert_decodes(b"id: 9\n\ndata: b\n\n", [msg("b", id="9")], last_event_id="9")


def test_last_event_id_string_waits_for_dispatch() -> None:
    """An id field sets the *buffer*; the string the client resends changes only on dispatch."""
    decoder = SSEDecoder("old")
    assert decoder.feed(b"id: new\ndata: x\n") == []
    assert decoder.last_event_id == "old"
    assert decoder.feed(b"\n") == [msg("x", id="new")]
    assert decoder.last_event_id == "new"


def test_last_event_id_seed_carries_over() -> None:
    """The constructor seeds the id from a previous connection: events carry it until a new id."""
    stream = b"data: a\n\nid: 2\ndata: b\n\n"
    assert_decodes(stream, [msg("a", id="1"), msg("b", id="2")], last_event_id="2", seed="1")
    assert_decodes(b"data: a\n\n", [msg("a", id="1")], last_event_id="1", seed="1")
    assert SSEDecoder("5").last_event_id == "5"


def test_retry_sets_reconnection_time() -> None:
    """Spec: "If the field value consists of only ASCII digits, then interpret the field value as
    an integer in base ten, and set the event stream's reconnection time to that integer".
    """
    assert_decodes(b"retry: 3000\n\n", [], retry=3000)
    assert_decodes(b"retry: 0012\n\n", [], retry=12)


def test_retry_that_is_not_all_ascii_digits_is_ignored() -> None:
    """Spec: "Otherwise, ignore the field." (signs, spaces, decimals, non-ASCII digits, empty)."""
    stream = (
        "retry: 10\n\nretry: -5\nretry: 1.5\nretry: 7 \nretry:  8\nretry: ٣\nretry:\nretry\n\n"
    )
    assert_decodes(stream.encode(), [], retry=10)


def test_retry_too_long_for_int_is_ignored() -> None:
    """A value with more digits than int() accepts cannot be meant as a delay: ignored."""
    stream = b"retry: 5\n\nretry: " + b"9" * 5000 + b"\n\n"
    for chunks in ([stream], [stream[:9], stream[9:20], stream[20:]]):
        events, decoder = feed_chunks(chunks)
        assert (events, decoder.retry) == ([], 5)


def test_retry_in_event_block_is_reported_on_that_event_only() -> None:
    """The reconnection time is stream state; the event whose block set it also carries it."""
    stream = b"retry: 500\ndata: a\n\ndata: b\n\nretry: 9\n\ndata: c\n\n"
    assert_decodes(stream, [msg("a", retry=500), msg("b"), msg("c")], retry=9)


# --- End of stream and the standard's own examples -------------------------------------------


def test_unterminated_event_is_not_dispatched() -> None:
    """Spec: "If the file ends in the middle of an event, before the final empty line, the
    incomplete event is not dispatched." (nor is an unterminated last line processed).
    """
    assert_decodes(b"data: a\n\ndata: b\n", [msg("a")])
    assert_decodes(b"data: a\n\nid: 3\ndata: b", [msg("a")], last_event_id="")


def test_spec_example_empty_and_newline_data() -> None:
    """The standard's example: "The first block fires events with the data set to the empty
    string ... The middle block fires an event with the data set to a single newline character.
    The last block is discarded because it is not followed by a blank line."."""
    assert_decodes(b"data\n\ndata\ndata\n\ndata:", [msg(""), msg("\n")])


def test_spec_example_space_after_colon() -> None:
    """The standard's example: "data:test" and "data: test" give identical events, "because
    the space after the colon is ignored if present"."""
    assert_decodes(b"data:test\n\ndata: test\n\n", [msg("test"), msg("test")])


def test_spec_example_stock_ticker() -> None:
    """The standard's example with comments, event types, ids and multi-line data."""
    stream = (
        b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\n"
        b"data:  third event\n\n"
    )
    expected = [msg("first event", id="1"), msg("second event"), msg(" third event")]
    assert_decodes(stream, expected, last_event_id="")


def test_blocks_of_every_shape_in_one_chunk() -> None:
    """Fast-path and line-by-line blocks interleave in order in a single chunk."""
    stream = (
        b"event: a\nid: 1\nevent: b\ndata: x\ndata: y\n\n"  # both event lines: the last wins
        b"id: 2\nid: 3\ndata: z\n\n"  # two ids
        b"data: p\n: c\ndata: q\n\n"  # a comment inside
        b"\n\n\n"  # empty lines: nothing
        b"data:r\n\n"  # no space
        b"id: 4\x00\ndata: s\n\n"  # an id with NUL
        b"data: t\nretry: 7\n\n"  # retry after data
    )
    expected = [
        msg("x\ny", event="b", id="1"),
        msg("z", id="3"),
        msg("p\nq", id="3"),
        msg("r", id="3"),
        msg("s", id="3"),
        msg("t", id="3", retry=7),
    ]
    assert_decodes(stream, expected, last_event_id="3", retry=7)


def test_event_continued_across_feeds() -> None:
    """Lines of one event arriving in separate feeds build one event."""
    decoder = SSEDecoder()
    assert decoder.feed(b"event: e\n") == []
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"data: b\n\ndata: c\n\n") == [msg("a\nb", event="e"), msg("c")]
    assert decoder.feed(b"retry: 5\n") == []
    assert decoder.feed(b"data: d\n\n") == [msg("d", retry=5)]
    assert decoder.feed(b"data: e\n") == []
    assert decoder.feed(b"data: f\n") == []
    assert decoder.feed(b"\n") == [msg("e\nf")]


def test_repr_shows_state() -> None:
    decoder = SSEDecoder("7")
    decoder.feed(b"retry: 5\n\n")
    assert repr(decoder) == "SSEDecoder(last_event_id='7', retry=5)"
