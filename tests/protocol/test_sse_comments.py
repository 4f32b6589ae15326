"""Comments and the stream preamble: lines that never become events."""

from __future__ import annotations

import pytest

from trio_stream.protocol import SSEDecoder, encode_comment, encode_preamble


def test_comment_line() -> None:
    assert encode_comment("keep-alive") == b": keep-alive\n"


def test_empty_comment_is_a_bare_colon() -> None:
    assert encode_comment() == b":\n"


def test_multi_line_comment_is_one_comment_line_per_line() -> None:
    """Every line starts with a colon, so no part of the text can become a field."""
    assert encode_comment("a\nb\r\nc\rdata: x") == b": a\n: b\n: c\n: data: x\n"
    assert encode_comment("a\n\nb") == b": a\n:\n: b\n"


def test_comments_decode_to_nothing() -> None:
    stream = encode_comment("a\ndata: b\n") + b"\n" + encode_comment("x") + b"\n"
    decoder = SSEDecoder()
    assert decoder.feed(stream) == []


def test_preamble_is_a_comment_and_a_blank_line() -> None:
    assert encode_preamble() == b":\n\n"
    assert encode_preamble(comment="hi") == b": hi\n\n"


def test_preamble_with_retry() -> None:
    preamble = encode_preamble(retry=2500, comment="stream")
    assert preamble == b": stream\nretry: 2500\n\n"
    decoder = SSEDecoder()
    assert decoder.feed(preamble) == []
    assert decoder.retry == 2500


@pytest.mark.parametrize("bad", [-1, 1.5, True, "10"])
def test_preamble_retry_must_be_a_non_negative_int(bad: object) -> None:
    with pytest.raises(ValueError, match="retry"):
        encode_preamble(retry=bad)  # type: ignore[arg-type]
