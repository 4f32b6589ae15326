"""The adapter's pure parts: codecs, handshake view, origins, limits, token bucket, frames."""

from __future__ import annotations

import json

import msgpack
import pytest

from trio_stream.core import Overflow
from trio_stream.protocol import Event
from trio_stream.websocket import (
    DecodeError,
    EventFrameCache,
    HandshakeRejected,
    HandshakeRequest,
    JsonCodec,
    MsgPackCodec,
    WebSocketClosed,
    event_message,
    normalize_origin,
    open_websocket_client,
)
from trio_stream.websocket._dial import Dialer
from trio_stream.websocket._handshake import ConnectionLimiter, OriginPolicy
from trio_stream.websocket._link import LinkSettings
from trio_stream.websocket._ratelimit import TokenBucket
from trio_stream.websocket._records import PeerSettings


def test_json_codec_round_trip_and_errors() -> None:
    codec = JsonCodec()
    frame = codec.encode({"a": "é", "b": [1, 2]})
    assert frame == '{"a":"é","b":[1,2]}'
    assert codec.decode(frame) == {"a": "é", "b": [1, 2]}
    assert codec.decode(frame.encode()) == {"a": "é", "b": [1, 2]}  # binary frames too
    with pytest.raises(DecodeError):
        codec.decode("{not json")
    with pytest.raises(DecodeError):
        codec.decode(b"\xff\xfe")
    assert JsonCodec(sort_keys=True).encode({"b": 1, "a": 2}) == '{"a":2,"b":1}'


def test_msgpack_codec_round_trip_and_errors() -> None:
    codec = MsgPackCodec()
    frame = codec.encode({"a": b"\x00", "n": 1})
    assert isinstance(frame, bytes)
    assert codec.decode(frame) == {"a": b"\x00", "n": 1}
    with pytest.raises(DecodeError):
        codec.decode("text frame")
    with pytest.raises(DecodeError):
        codec.decode(b"\xc1")  # a reserved, never-valid byte
    assert msgpack.unpackb(frame) == {"a": b"\x00", "n": 1}


def test_handshake_request_view() -> None:
    request = HandshakeRequest.build(
        "/ws/chat?token=t1&token=t2&empty=",
        [
            (b"Origin", b"https://app.example"),
            (b"cookie", b"sid=abc"),
            (b"Cookie", b"theme=dark"),
            (b"X-Multi", b"1"),
            (b"x-multi", b"2"),
        ],
        ("127.0.0.1", 5000),
        ("chat.v1",),
    )
    assert request.path == "/ws/chat"
    assert request.query == {"token": "t1", "empty": ""}
    assert request.query_string == "token=t1&token=t2&empty="
    assert request.origin == "https://app.example"
    assert request.cookies == {"sid": "abc", "theme": "dark"}
    assert request.headers["x-multi"] == "1, 2"
    assert request.client == ("127.0.0.1", 5000)
    assert request.subprotocols == ("chat.v1",)
    bare = HandshakeRequest.build("", [(b"cookie", b'bad"cookie; =')], None)
    assert bare.path == "/"
    assert bare.origin is None
    assert bare.cookies == {}


def test_origins_are_normalised_and_checked() -> None:
    assert normalize_origin("HTTPS://Example.COM:443/") == "https://example.com"
    assert normalize_origin("http://example.com:8080") == "http://example.com:8080"
    assert normalize_origin("http://[::1]:80") == "http://[::1]"
    assert normalize_origin("null") == "null"
    assert normalize_origin("http://host:99999") == "http://host:99999"
    policy = OriginPolicy(["https://app.example", "http://localhost:8000"])
    assert policy.allows(None)  # no Origin: not a browser, cannot ride cookies
    assert policy.allows("https://APP.example:443")
    assert policy.allows("http://localhost:8000")
    assert not policy.allows("http://localhost:8001")
    assert not policy.allows("null")
    assert OriginPolicy(None).allows("https://anything.example")


def test_connection_limiter_counts_globally_and_per_client() -> None:
    limiter = ConnectionLimiter(max_connections=3, max_per_client=2)
    assert limiter.admit("a") is None
    assert limiter.admit("a") is None
    assert limiter.admit("a") == 429
    assert limiter.admit("b") is None
    assert limiter.admit("c") == 503
    limiter.release("a")
    assert limiter.admit("a") is None
    assert (limiter.open, limiter.rejected) == (3, 2)
    for address in ("a", "a", "b"):
        limiter.release(address)
    assert limiter.open == 0
    with pytest.raises(ValueError, match="at least 1"):
        ConnectionLimiter(0, 1)


def test_token_bucket_allows_bursts_then_the_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.5)  # one token back after 1/rate
    assert not bucket.take(0.5)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]  # capped
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(rate=0, burst=1, now=0.0)


def test_event_frames_are_encoded_once_per_event() -> None:
    cache = EventFrameCache(JsonCodec(), capacity=2)
    first = Event.json({"x": 1}, event="tick", id="e-1")
    frame = cache.frame(first)
    assert json.loads(frame) == {"id": "e-1", "event": "tick", "data": '{"x":1}'}
    assert cache.frame(first) is frame
    assert cache.encoded == 1
    second, third = Event("a", id="e-2"), Event("b", id="e-3")
    assert json.loads(cache.frame(second))["event"] == "message"
    cache.frame(third)  # evicts the least recently used: first
    cache.frame(first)
    assert cache.encoded == 4
    assert event_message(Event("x")) == {"id": None, "event": "message", "data": "x"}
    with pytest.raises(ValueError, match="capacity"):
        EventFrameCache(JsonCodec(), capacity=0)


def test_dialer_parses_urls() -> None:
    dialer = Dialer.parse("ws://127.0.0.1:9000/ws/t?x=1", headers={"Origin": "http://o"})
    assert (dialer.host, dialer.port, dialer.resource) == ("127.0.0.1", 9000, "/ws/t?x=1")
    assert dialer.host_header == "127.0.0.1:9000"
    assert dialer.headers == [(b"Origin", b"http://o")]
    assert str(dialer) == "ws://127.0.0.1:9000/ws/t?x=1"
    secure = Dialer.parse("wss://example.com", headers=[("A", "b")])
    assert (secure.port, secure.resource, secure.host_header) == (443, "/", "example.com")
    assert Dialer.parse("ws://[::1]:80/").host_header == "[::1]"
    for bad in ("http://x", "ws://", "wss:///path"):
        with pytest.raises(ValueError, match="URL"):
            Dialer.parse(bad)
    import ssl

    with pytest.raises(ValueError, match="wss"):
        Dialer.parse("ws://x", ssl_context=ssl.create_default_context())
    with pytest.raises(ValueError, match="positive"):
        Dialer.parse("ws://x", connect_timeout=0)


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="heartbeat_interval"):
        LinkSettings(0, 1, 1, 1)
    with pytest.raises(ValueError, match="pong_timeout"):
        LinkSettings(None, 0, 1, 1)
    codec = JsonCodec()
    with pytest.raises(ValueError, match="rate_limit"):
        PeerSettings(codec, None, 0.0, 1, 1, 1, Overflow.BLOCK)
    with pytest.raises(ValueError, match="capacities"):
        PeerSettings(codec, None, None, 1, 0, 1, Overflow.BLOCK)


def test_errors_carry_their_codes() -> None:
    closed = WebSocketClosed(4000, "too slow")
    assert (closed.code, closed.reason) == (4000, "too slow")
    assert "4000" in str(closed)
    assert str(WebSocketClosed(1006)) == "WebSocket closed with code 1006"
    assert HandshakeRejected(403).status_code == 403
    with pytest.raises(ValueError, match="4xx or 5xx"):
        HandshakeRejected(200)


async def test_client_refuses_a_disconnect_outbox() -> None:
    with pytest.raises(ValueError, match="outbox_overflow"):
        async with open_websocket_client("ws://127.0.0.1:9", outbox_overflow=Overflow.DISCONNECT):
            pass  # pragma: no cover


def test_public_names_are_complete_sorted_and_documented() -> None:
    import trio_stream.websocket as ws

    public = {name for name in dir(ws) if not name.startswith("_")}
    assert set(ws.__all__) == public
    assert ws.__all__ == sorted(ws.__all__)
    for name in ws.__all__:
        assert (getattr(ws, name).__doc__ or "").strip(), name
