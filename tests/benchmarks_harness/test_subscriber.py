"""The load client's subscriber: the short path for one event per read agrees with the long one."""

from __future__ import annotations

import pytest

from benchmarks._subscriber import Phase, Subscriber
from benchmarks._wire import WebSocketFrames

SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)
WS_HEAD = b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n"


def sse_chunk(*seqs: int) -> bytes:
    """One chunk holding an event per sequence number; sent at 100 + seq."""
    data = b"".join(b"data: %x %x payload\n\n" % (seq, 100 + seq) for seq in seqs)
    return b"%x\r\n%b\r\n" % (len(data), data)


def ws_frame(seq: int, *, json: bool = False) -> bytes:
    text = b'{"data": "%x %x"}' % (seq, 100 + seq) if json else b"%x %x payload" % (seq, 100 + seq)
    return bytes([0x81, len(text)]) + text


def subscriber(websocket: bool, target: int) -> Subscriber:
    found = Subscriber(b"", websocket)
    phase = Phase(target=target, subscribers=1)
    phase.record_latency = True
    found.start_phase(phase)
    found.parse(WS_HEAD if websocket else SSE_HEAD, now=0)
    assert not found.failure
    return found


def outcome(found: Subscriber) -> tuple[int, int, list[int], list[bytes], bool]:
    phase = found.phase
    return found.received, phase.errors, phase.latencies, phase.latency_events, phase.done.is_set()


@pytest.mark.parametrize(
    "reads",
    [
        pytest.param([sse_chunk(seq) for seq in range(4)], id="one event per read"),
        pytest.param([sse_chunk(0, 1), sse_chunk(2), sse_chunk(3)], id="two events in a chunk"),
        pytest.param([sse_chunk(0) + sse_chunk(1), sse_chunk(2) + sse_chunk(3)], id="two chunks"),
        pytest.param(
            [b"".join(sse_chunk(seq) for seq in range(4))[i : i + 9] for i in range(0, 200, 9)],
            id="split anywhere",
        ),
    ],
)
def test_sse_reads_of_any_shape_give_the_same_count_and_latencies(reads: list[bytes]) -> None:
    found = subscriber(websocket=False, target=4)
    for read in reads:
        found.parse(read, now=1_000)
    assert outcome(found) == (4, 0, [900, 899, 898, 897], [b"0", b"1", b"2", b"3"], True)


def test_an_event_split_across_chunks_is_counted_once_whole() -> None:
    found = subscriber(websocket=False, target=2)
    event = b"data: 0 64 payload\n\n"
    found.parse(b"%x\r\n%b\r\n" % (5, event[:5]), now=500)  # part of an event: nothing yet
    assert found.received == 0
    found.parse(b"%x\r\n%b\r\n" % (len(event) - 5, event[5:]), now=1_000)
    found.parse(sse_chunk(1), now=1_000)  # now a whole chunk again, after the held part
    assert outcome(found) == (2, 0, [900, 899], [b"0", b"1"], True)


def test_sse_order_errors_are_counted_on_the_short_path() -> None:
    found = subscriber(websocket=False, target=3)
    for seq in (0, 2, 1):
        found.parse(sse_chunk(seq), now=1_000)
    assert found.phase.errors == 2


@pytest.mark.parametrize(
    "reads",
    [
        pytest.param([ws_frame(seq) for seq in range(3)], id="one frame per read"),
        pytest.param([ws_frame(0) + ws_frame(1), ws_frame(2)], id="two frames"),
        pytest.param(
            [b"".join(ws_frame(seq) for seq in range(3))[i : i + 5] for i in range(0, 90, 5)],
            id="split anywhere",
        ),
        pytest.param([ws_frame(seq, json=True) for seq in range(3)], id="JSON"),
    ],
)
def test_websocket_reads_of_any_shape_give_the_same_count_and_latencies(
    reads: list[bytes],
) -> None:
    found = subscriber(websocket=True, target=3)
    for read in reads:
        found.parse(read, now=1_000)
    assert outcome(found) == (3, 0, [900, 899, 898], [b"0", b"1", b"2"], True)


def test_what_is_one_short_text_frame() -> None:
    frames = WebSocketFrames()
    assert frames.one_text(ws_frame(7))
    assert not frames.one_text(ws_frame(7)[:-1])  # incomplete
    assert not frames.one_text(ws_frame(7) + ws_frame(8))  # two
    assert not frames.one_text(b"\x89\x00")  # a ping
    assert not frames.one_text(bytes([0x81, 126, 0, 200]) + b"x" * 200)  # a longer length
    frames.feed(ws_frame(1)[:3])
    assert not frames.one_text(ws_frame(7))  # part of a frame is held


def test_latency_is_taken_when_the_read_arrives() -> None:
    found = subscriber(websocket=False, target=1)
    found.data_received(sse_chunk(0))
    assert found.received == 1
    assert found.phase.latencies[0] > 0  # the monotonic clock, minus a send time of 100 ns
