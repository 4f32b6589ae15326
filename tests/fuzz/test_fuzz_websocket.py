"""Fuzz the WebSocket server's message path over real loopback sockets.

A real ``serve_websockets`` echo server (codec decode, ``validate``, size and
rate limits) gets arbitrary frames from a bare wsproto client. Invariant:
every message is echoed, or the connection closes with the documented code
(1009 too big, 1007 undecodable or invalid, 4008 rate limited, 1002 broken
protocol); never 1011 (an internal error), never an ERROR log line, never a
hang, and the server keeps serving the next connection.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import msgpack
import pytest
import trio
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz._fuzz_support import NETWORK_FUZZ_SETTINGS, trap_error_logs
from tests.fuzz._fuzz_ws_client import FuzzClient, open_fuzz_client
from trio_stream.protocol import CloseCode
from trio_stream.websocket import (
    Codec,
    DecodeError,
    JsonCodec,
    MsgPackCodec,
    WebSocketPeer,
    WebSocketServer,
    serve_websockets,
)

MAX_SIZE = 16384
BOUND = 10.0  # seconds: a safety bound per example, never a timing assertion


def _validate(message: Any) -> Any:
    if not isinstance(message, dict):
        raise TypeError("a message is an object")
    if "data" not in message:
        raise ValueError("a message has 'data'")
    return message


async def _echo(peer: WebSocketPeer) -> None:
    async for message in peer:
        await peer.send(message)


@asynccontextmanager
async def _server(codec: Codec, **options: Any) -> AsyncIterator[WebSocketServer]:
    options = {"rate_limit": None, "max_message_size": MAX_SIZE, **options}
    async with trio.open_nursery() as nursery:
        server: WebSocketServer = await nursery.start(
            partial(
                serve_websockets,
                _echo,
                host="127.0.0.1",
                port=0,
                codec=codec,
                validate=_validate,
                heartbeat_interval=None,
                close_timeout=0.5,
                **options,
            )
        )
        yield server
        nursery.cancel_scope.cancel()


def _expected(codec: Codec, payload: str | bytes) -> str | bytes | int:
    """The echo the server owes for ``payload``, or the close code it must answer with."""
    if len(payload) > MAX_SIZE:  # trio-websocket counts characters of text, bytes of binary
        return CloseCode.MESSAGE_TOO_BIG
    try:
        return codec.encode(_validate(codec.decode(payload)))
    except (ValueError, TypeError):  # DecodeError is a ValueError, as validate's are
        return CloseCode.INVALID_FRAME_PAYLOAD_DATA


def _nested(depth: int) -> str:
    return '{"data":' + "[" * depth + "]" * depth + "}"


def _values(integers: st.SearchStrategy[int]) -> st.SearchStrategy[Any]:
    return st.recursive(
        st.none() | st.booleans() | integers | st.floats() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
        max_leaves=10,
    )


_json_values = _values(st.integers())
_msgpack_values = _values(st.integers(-(2**63), 2**64 - 1))  # what MessagePack can carry
_json_text = st.one_of(
    st.text(max_size=64),
    _json_values.map(json.dumps),
    st.dictionaries(st.just("data"), _json_values, min_size=1).map(json.dumps),
    st.integers(0, 200).map(_nested),  # deep but parseable
    st.integers(6000, 8000).map(_nested),  # deeper than any recursion limit in use
    st.integers(MAX_SIZE - 16, MAX_SIZE + 16).map(lambda n: json.dumps({"data": "x" * n})),
)
_packb = partial(msgpack.packb, use_bin_type=True)
_msgpack_bytes = st.one_of(
    st.binary(max_size=64),
    _msgpack_values.map(_packb),
    st.dictionaries(st.just("data"), _msgpack_values, min_size=1).map(_packb),
    st.integers(1, 8000).map(lambda n: b"\x81\xa4data" + b"\x91" * n + b"\xc0"),
    st.integers(MAX_SIZE - 16, MAX_SIZE + 16).map(lambda n: _packb({"data": b"x" * n})),
)
_CODECS = {"json": (JsonCodec, _json_text), "msgpack": (MsgPackCodec, _msgpack_bytes)}
_fragments = st.lists(st.integers(0, MAX_SIZE + 64), max_size=3)


async def _assert_still_serving(server: WebSocketServer, codec: Codec) -> None:
    async with open_fuzz_client(server.port) as client:
        await client.handshake()
        frame = codec.encode({"data": "still here"})
        await client.send_message(frame)
        assert (await client.read_until_closed(expected=1)).messages == [frame]


def _assert_no_internal_error(server: WebSocketServer, errors: list[Any]) -> None:
    assert not errors, [record.getMessage() for record in errors]
    assert CloseCode.INTERNAL_ERROR not in server.statistics().closed


async def _exchange(client: FuzzClient, expected: list[str | bytes | int]) -> None:
    """Read the server's answers to messages sent, and check them against ``expected``."""
    first_bad = next((i for i, e in enumerate(expected) if isinstance(e, int)), None)
    if first_bad is None:
        outcome = await client.read_until_closed(expected=len(expected))
        assert outcome.messages == expected
        return
    outcome = await client.read_until_closed()
    # Echoes come in order and stop at the first bad message. The size limit
    # is enforced by trio-websocket's reader, which may run ahead of the
    # decoder: a later oversized message may be the one the close reports.
    assert outcome.messages == expected[: len(outcome.messages)]
    assert len(outcome.messages) <= first_bad
    allowed = {expected[first_bad]}
    if CloseCode.MESSAGE_TOO_BIG in expected[first_bad:]:
        allowed.add(CloseCode.MESSAGE_TOO_BIG)
    assert outcome.close_code in allowed


@pytest.mark.parametrize("codec_name", sorted(_CODECS))
@NETWORK_FUZZ_SETTINGS
@given(data=st.data())
async def test_messages_are_echoed_or_closed_with_their_documented_code(
    codec_name: str, data: st.DataObject
) -> None:
    make_codec, payloads = _CODECS[codec_name]
    codec = make_codec()
    messages = data.draw(
        st.lists(st.tuples(payloads | st.text(max_size=8), _fragments), max_size=6)
    )
    # An undecodable message last, so that every connection ends with a close.
    messages.append(("", []))  # neither JSON nor MessagePack (a text frame): 1007
    expected = [_expected(codec, payload) for payload, _ in messages]
    with trap_error_logs() as errors, trio.fail_after(BOUND):
        async with _server(codec) as server:
            async with open_fuzz_client(server.port) as client:
                await client.handshake()
                for payload, fragments in messages:
                    if not await client.send_message(payload, fragments):
                        break
                await _exchange(client, expected)
            await _assert_still_serving(server, codec)
        _assert_no_internal_error(server, errors)


@NETWORK_FUZZ_SETTINGS
@given(st.integers(1, 5), st.lists(_json_text, min_size=1, max_size=8))
async def test_rate_limit_closes_with_4008_after_the_burst(
    burst: int, payloads: list[str]
) -> None:
    codec = JsonCodec()
    # Within the burst a message gets its usual answer; past it, 4008 (unless
    # it is too big: trio-websocket checks the size before we see it).
    expected = [
        _expected(codec, payload)
        if i < burst or len(payload) > MAX_SIZE
        else CloseCode.RATE_LIMITED
        for i, payload in enumerate(payloads)
    ]
    with trap_error_logs() as errors, trio.fail_after(BOUND):
        # A refill of one message per 1000 s: only the burst gets through.
        async with (
            _server(codec, rate_limit=0.001, rate_burst=burst) as server,
            open_fuzz_client(server.port) as client,
        ):
            await client.handshake()
            for payload in payloads:
                await client.send_message(payload)
            await _exchange(client, expected)
        _assert_no_internal_error(server, errors)


_GARBAGE_CLOSE_CODES = {
    None,
    CloseCode.PROTOCOL_ERROR,
    CloseCode.INVALID_FRAME_PAYLOAD_DATA,
    CloseCode.MESSAGE_TOO_BIG,
}


@NETWORK_FUZZ_SETTINGS
@given(st.lists(st.binary(min_size=1, max_size=200), max_size=6))
@example([b"\x81\xfe\xff\xff\0\0\0\0"])  # a 64 KiB text frame that never comes
@example([b"\x89\x80\0\0\0\0"] * 3)  # pings... then EOF
@example([b"\x81\x85\0\0\0\0\xff\xfe\xfd\xfc\xfb"])  # text that is not UTF-8
async def test_garbage_frames_never_break_the_server(chunks: list[bytes]) -> None:
    codec = JsonCodec()
    with trap_error_logs() as errors, trio.fail_after(BOUND):
        async with _server(codec) as server:
            async with open_fuzz_client(server.port) as client:
                await client.handshake()
                for chunk in chunks:
                    if not await client.send_raw(chunk):
                        break
                await client.send_eof()  # what the frame parser waits for will never come
                outcome = await client.read_until_closed()
            assert outcome.close_code in _GARBAGE_CLOSE_CODES
            await _assert_still_serving(server, codec)
        _assert_no_internal_error(server, errors)


@NETWORK_FUZZ_SETTINGS
@given(st.lists(st.binary(min_size=1, max_size=200), max_size=6))
@example([b"GET / HTTP/1.1\r\n\r\n"])
@example([b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"])
async def test_garbage_handshakes_never_break_the_server(chunks: list[bytes]) -> None:
    # An unfinished handshake is dropped after handshake_timeout (the server
    # does not notice the client's EOF before that): the test does not wait.
    codec = JsonCodec()
    with trap_error_logs() as errors, trio.fail_after(BOUND):
        async with _server(codec) as server, open_fuzz_client(server.port) as client:
            for chunk in chunks:
                if not await client.send_raw(chunk):
                    break
            await client.send_eof()
            await _assert_still_serving(server, codec)
        _assert_no_internal_error(server, errors)


async def test_unfinished_handshake_is_dropped_after_the_handshake_timeout() -> None:
    codec = JsonCodec()
    with trap_error_logs() as errors, trio.fail_after(BOUND):
        async with (
            _server(codec, handshake_timeout=1.0) as server,
            open_fuzz_client(server.port) as client,
        ):
            await client.send_raw(b"GET / HTTP/1.1\r\nHost:")
            await client.send_eof()
            await _assert_still_serving(server, codec)
            assert (await client.read_until_closed()).close_code is None
        _assert_no_internal_error(server, errors)


async def test_deeply_nested_json_is_closed_with_1007_not_an_internal_error() -> None:
    # Regression: json.loads raised RecursionError out of JsonCodec.decode; the
    # server closed with 1011 and logged "connection failed" with a traceback.
    with pytest.raises(DecodeError):
        JsonCodec().decode(_nested(100_000).encode())
    codec = JsonCodec()
    with trap_error_logs() as errors, trio.fail_after(BOUND):
        async with _server(codec, max_message_size=2**20) as server:
            async with open_fuzz_client(server.port) as client:
                await client.handshake()
                await client.send_message(_nested(100_000))
                outcome = await client.read_until_closed()
            assert outcome.close_code == CloseCode.INVALID_FRAME_PAYLOAD_DATA
        _assert_no_internal_error(server, errors)
