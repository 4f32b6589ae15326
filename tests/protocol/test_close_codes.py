"""The WebSocket close-code taxonomy: which closes a client reconnects after."""

from __future__ import annotations

import pytest

from trio_stream.protocol import CloseCode, should_reconnect

RECONNECT = [
    CloseCode.GOING_AWAY,
    CloseCode.NO_STATUS_RECEIVED,
    CloseCode.ABNORMAL_CLOSURE,
    CloseCode.INTERNAL_ERROR,
    CloseCode.SERVICE_RESTART,
    CloseCode.TRY_AGAIN_LATER,
    CloseCode.BAD_GATEWAY,
    CloseCode.SLOW_CONSUMER,
    CloseCode.HEARTBEAT_TIMEOUT,
    CloseCode.RATE_LIMITED,
]
TERMINAL = [
    CloseCode.NORMAL_CLOSURE,
    CloseCode.PROTOCOL_ERROR,
    CloseCode.UNSUPPORTED_DATA,
    CloseCode.INVALID_FRAME_PAYLOAD_DATA,
    CloseCode.POLICY_VIOLATION,
    CloseCode.MESSAGE_TOO_BIG,
    CloseCode.MANDATORY_EXTENSION,
    CloseCode.TLS_HANDSHAKE,
    CloseCode.UNAUTHORIZED,
    CloseCode.FORBIDDEN,
    CloseCode.NOT_FOUND,
    CloseCode.INVALID_MESSAGE,
]


def test_every_code_is_classified() -> None:
    assert set(RECONNECT) | set(TERMINAL) == set(CloseCode)
    assert not set(RECONNECT) & set(TERMINAL)


@pytest.mark.parametrize("code", RECONNECT)
def test_reconnect_codes(code: CloseCode) -> None:
    assert should_reconnect(code)
    assert should_reconnect(int(code))  # plain ints from the wire work too


@pytest.mark.parametrize("code", TERMINAL)
def test_terminal_codes(code: CloseCode) -> None:
    assert not should_reconnect(code)
    assert not should_reconnect(int(code))


def test_no_close_code_means_the_connection_dropped() -> None:
    assert should_reconnect(None)


@pytest.mark.parametrize("code", [1004, 2000, 3000, 3008, 4006, 4999, 999, 5000, 0, -1])
def test_unknown_codes_are_terminal(code: int) -> None:
    """Without knowing why the server closed, hammering it with reconnections is wrong."""
    assert not should_reconnect(code)


def test_rfc_6455_values() -> None:
    assert CloseCode.NORMAL_CLOSURE.value == 1000
    assert CloseCode.ABNORMAL_CLOSURE.value == 1006
    assert CloseCode.MESSAGE_TOO_BIG.value == 1009
    assert CloseCode.TRY_AGAIN_LATER.value == 1013


def test_library_codes_are_private_use_and_mirror_http() -> None:
    library = [code for code in CloseCode if code >= 4000]
    assert all(4000 <= code <= 4999 for code in library)
    assert CloseCode.UNAUTHORIZED.value == 4001
    assert CloseCode.FORBIDDEN.value == 4003
    assert CloseCode.NOT_FOUND.value == 4004
    assert CloseCode.SLOW_CONSUMER.value == 4000
    assert CloseCode.RATE_LIMITED.value == 4008


def test_every_code_is_documented() -> None:
    assert should_reconnect.__doc__ is not None
    for code in CloseCode:
        assert f" {code.name} " in should_reconnect.__doc__
