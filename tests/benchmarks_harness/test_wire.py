"""The load client's chunked-body decoder: one whole chunk per read, and everything else."""

from __future__ import annotations

from benchmarks._wire import ChunkedDecoder


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


def test_one_whole_chunk_per_read() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(chunk(b"data: 1\n\n")) == b"data: 1\n\n"
    assert decoder.feed(chunk(b"x" * 300)) == b"x" * 300
    assert decoder.buffer == b""
    assert not decoder.finished


def test_chunks_split_and_joined_across_reads() -> None:
    decoder = ChunkedDecoder()
    wire = chunk(b"a" * 20) + chunk(b"b" * 5) + chunk(b"c" * 40)
    out = b""
    for start in range(0, len(wire), 7):
        out += decoder.feed(wire[start : start + 7])
    assert out == b"a" * 20 + b"b" * 5 + b"c" * 40
    assert decoder.feed(chunk(b"d") + chunk(b"e")) == b"de"  # two whole chunks in one read


def test_extensions_and_the_last_chunk() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(b"3;name=value\r\nabc\r\n") == b"abc"
    assert decoder.feed(b"0\r\n\r\n") == b""
    assert decoder.finished
    assert decoder.feed(chunk(b"after")) == b""


def test_only_the_canonical_size_line_takes_the_short_path() -> None:
    decoder = ChunkedDecoder()
    assert decoder.whole_chunk(chunk(b"abcdef")) == 3
    assert decoder.whole_chunk(chunk(b"x" * 300)) == 5
    for other in (b"06\r\nabcdef\r\n", b"A\r\n" + b"x" * 10 + b"\r\n", b"6;e=1\r\nabcdef\r\n"):
        assert decoder.whole_chunk(other) == 0
        assert decoder.feed(other) in (b"abcdef", b"x" * 10)  # the general path decodes it
    assert decoder.whole_chunk(b"no line end") == 0
    assert decoder.whole_chunk(chunk(b"abcdef") + b"4") == 0  # more than one chunk
    decoder.feed(b"6\r\nabc")
    assert decoder.whole_chunk(chunk(b"abcdef")) == 0  # part of a chunk is held
