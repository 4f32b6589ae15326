"""The Event value: validation at construction, the wire form, JSON, ids."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from trio_stream.protocol import Event, SSEDecoder


def test_defaults() -> None:
    event = Event()
    assert (event.data, event.event, event.id, event.retry) == ("", None, None, None)
    assert event.encode() == b"data: \n\n"


def test_is_frozen() -> None:
    event = Event("x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.data = "y"  # type: ignore[misc]


def test_equal_and_hashable_by_value() -> None:
    assert Event("x", event="e", id="1", retry=5) == Event("x", event="e", id="1", retry=5)
    assert Event("x") != Event("y")
    assert len({Event("x"), Event("x"), Event("y")}) == 2


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "\n"])
def test_event_type_rejects_line_breaks(bad: str) -> None:
    """A type with CR or LF would inject fields into the stream."""
    with pytest.raises(ValueError, match="type"):
        Event("x", event=bad)


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\0b"])
def test_id_rejects_line_breaks_and_nul(bad: str) -> None:
    """CR/LF would inject fields; a NUL id would be ignored by every client."""
    with pytest.raises(ValueError, match="id"):
        Event("x", id=bad)


def test_empty_id_is_allowed() -> None:
    """``id: ""`` is meaningful: it resets the client's last event id."""
    assert Event("x", id="").encode() == b"id: \ndata: x\n\n"


def test_retry_must_be_a_non_negative_int() -> None:
    with pytest.raises(ValueError, match="negative"):
        Event("x", retry=-1)
    with pytest.raises(TypeError, match="int"):
        Event("x", retry=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="int"):
        Event("x", retry=True)
    assert Event("x", retry=0).retry == 0


def test_data_must_be_text() -> None:
    with pytest.raises(TypeError, match="str"):
        Event(b"x")  # type: ignore[arg-type]


def test_encode_writes_fields_in_order() -> None:
    event = Event("hello", event="greeting", id="42", retry=1500)
    assert event.encode() == b"event: greeting\nid: 42\nretry: 1500\ndata: hello\n\n"


def test_encode_splits_data_on_every_line_break() -> None:
    """CR, LF and CRLF all become separate data lines (a decoder gives them back as LF)."""
    assert Event("a\nb\r\nc\rd").encode() == b"data: a\ndata: b\ndata: c\ndata: d\n\n"
    assert Event("a\n").encode() == b"data: a\ndata: \n\n"


def test_encode_keeps_other_unicode_separators() -> None:
    """Only CR and LF end SSE lines; U+2028, VT, FF ... are ordinary data."""
    data = "a\u2028b\x0bc\x0cd\x1ce\x85f"
    encoded = Event(data).encode()
    assert encoded.count(b"\n") == 2
    assert SSEDecoder().feed(encoded)[0].data == data


def test_encode_is_utf8() -> None:
    assert Event("東京").encode() == "data: 東京\n\n".encode()


def test_encode_is_cached() -> None:
    """An event fanned out to many subscribers is encoded once."""
    event = Event("x" * 100)
    assert event.encode() is event.encode()


def test_json_is_compact_and_keeps_unicode() -> None:
    event = Event.json({"a": [1, 2], "b": "ü"}, event="e", id="1", retry=3)
    assert event.data == '{"a":[1,2],"b":"ü"}'
    assert (event.event, event.id, event.retry) == ("e", "1", 3)


def test_json_passes_dumps_arguments() -> None:
    assert Event.json({"b": 1, "a": 2}, sort_keys=True).data == '{"a":2,"b":1}'
    assert Event.json({"a": 1}, separators=(", ", ": ")).data == '{"a": 1}'


def test_json_validates_like_the_constructor() -> None:
    with pytest.raises(ValueError, match="id"):
        Event.json(1, id="a\nb")


def test_with_id_returns_a_restamped_copy() -> None:
    event = Event("x", event="e", retry=5)
    stamped = event.with_id("7")
    assert stamped == Event("x", event="e", id="7", retry=5)
    assert event.id is None
    assert stamped.encode() == b"event: e\nid: 7\nretry: 5\ndata: x\n\n"


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\0b"])
def test_with_id_validates(bad: str) -> None:
    with pytest.raises(ValueError, match="id"):
        Event("x").with_id(bad)


def test_trusted_builds_an_equal_event_without_validation() -> None:
    event = Event._trusted("x", "message", "1", None)
    assert event == Event("x", event="message", id="1")
    assert event.encode() == b"event: message\nid: 1\ndata: x\n\n"


def test_repr_hides_the_cache() -> None:
    event = Event("x")
    event.encode()
    assert repr(event) == "Event(data='x', event=None, id=None, retry=None)"


def test_copies_keep_the_checks() -> None:
    """The constructor is hand-written: replace(), pickle and keywords still work."""
    event = Event("x", event="e", id="1", retry=5)
    assert dataclasses.replace(event, data="y") == Event("y", event="e", id="1", retry=5)
    with pytest.raises(ValueError, match="id"):
        dataclasses.replace(event, id="a\nb")
    assert pickle.loads(pickle.dumps(event)) == event
    assert Event(data="x", retry=0).retry == 0


@pytest.mark.parametrize("id", [None, "", "7"])
def test_the_one_line_shape_encodes_like_the_others(id: str | None) -> None:
    """An id and one line of data take a shortcut; the bytes are the same."""
    line = b"" if id is None else f"id: {id}\n".encode()
    assert Event("a b", id=id).encode() == line + b"data: a b\n\n"
    assert Event("a\nb", id=id).encode() == line + b"data: a\ndata: b\n\n"
