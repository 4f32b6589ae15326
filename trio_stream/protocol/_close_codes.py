"""WebSocket close codes: RFC 6455's, the library's own 4xxx codes, and which to reconnect on."""

from __future__ import annotations

import enum

__all__ = ["CloseCode", "should_reconnect"]


class CloseCode(enum.IntEnum):
    """The WebSocket close codes trio_stream sends or interprets.

    1000-1015 are RFC 6455's (section 7.4.1, and the IANA registry for
    1012-1014); 1005, 1006 and 1015 are never sent in a close frame, they
    describe how a connection ended. 4000-4999 are for private use: the
    library's own codes below mirror HTTP statuses where one fits (4001 ~
    401, 4003 ~ 403, 4004 ~ 404). :func:`should_reconnect` says which codes a
    client should reconnect after.
    """

    NORMAL_CLOSURE = 1000
    """The peer is done: the stream or the session ended on purpose."""
    GOING_AWAY = 1001
    """The server is shutting down (or a browser left the page)."""
    PROTOCOL_ERROR = 1002
    """The peer broke the WebSocket protocol."""
    UNSUPPORTED_DATA = 1003
    """A message of a type the endpoint cannot accept (binary for a text-only one)."""
    NO_STATUS_RECEIVED = 1005
    """The close frame carried no code (reported locally, never sent)."""
    ABNORMAL_CLOSURE = 1006
    """The connection dropped without a close frame (reported locally, never sent)."""
    INVALID_FRAME_PAYLOAD_DATA = 1007
    """A text message that is not valid UTF-8."""
    POLICY_VIOLATION = 1008
    """A message broke the endpoint's policy (a generic refusal)."""
    MESSAGE_TOO_BIG = 1009
    """A message larger than the endpoint accepts."""
    MANDATORY_EXTENSION = 1010
    """The client needed an extension the server did not negotiate."""
    INTERNAL_ERROR = 1011
    """The server hit an unexpected error."""
    SERVICE_RESTART = 1012
    """The server is restarting."""
    TRY_AGAIN_LATER = 1013
    """The server is overloaded for now."""
    BAD_GATEWAY = 1014
    """A gateway or proxy got an invalid response from upstream."""
    TLS_HANDSHAKE = 1015
    """The TLS handshake failed (reported locally, never sent)."""

    SLOW_CONSUMER = 4000
    """The client read too slowly and its bounded queue overflowed; it may resume."""
    UNAUTHORIZED = 4001
    """No valid credentials (like HTTP 401)."""
    HEARTBEAT_TIMEOUT = 4002
    """The peer did not answer a heartbeat ping in time."""
    FORBIDDEN = 4003
    """The credentials do not allow this (like HTTP 403)."""
    NOT_FOUND = 4004
    """Unknown topic or resource (like HTTP 404)."""
    INVALID_MESSAGE = 4005
    """A message failed the server's validation (bad JSON, unknown action, ...)."""
    RATE_LIMITED = 4008
    """The client sent too much too fast; reconnect only after a backoff delay."""


_RECONNECT = frozenset(
    {
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
    }
)


def should_reconnect(code: int | None) -> bool:
    """Whether a client should reconnect (after its backoff delay) when closed with ``code``.

    ``None`` means the connection ended without any close code. A client
    always waits a :class:`Backoff` delay before reconnecting; "terminal"
    means retrying cannot help, so it stops and reports the code.

    code  | name                       | reconnect | why
    ------|----------------------------|-----------|-----
    None  | (no close code)            | yes       | the network or the peer died mid-stream
    1000  | NORMAL_CLOSURE             | no        | the server ended the stream on purpose: done
    1001  | GOING_AWAY                 | yes       | a server shutting down; another will answer
    1002  | PROTOCOL_ERROR             | no        | a bug on one side; it would happen again
    1003  | UNSUPPORTED_DATA           | no        | the client sends what the server refuses
    1005  | NO_STATUS_RECEIVED         | yes       | an unexplained close: treated as a drop
    1006  | ABNORMAL_CLOSURE           | yes       | the connection dropped
    1007  | INVALID_FRAME_PAYLOAD_DATA | no        | the client sends invalid UTF-8
    1008  | POLICY_VIOLATION           | no        | the server refuses the client
    1009  | MESSAGE_TOO_BIG            | no        | the client would send it again
    1010  | MANDATORY_EXTENSION        | no        | the server lacks what the client needs
    1011  | INTERNAL_ERROR             | yes       | a server fault, possibly transient
    1012  | SERVICE_RESTART            | yes       | the server is restarting
    1013  | TRY_AGAIN_LATER            | yes       | overloaded for now
    1014  | BAD_GATEWAY                | yes       | a proxy's upstream failed, possibly transient
    1015  | TLS_HANDSHAKE              | no        | certificates do not fix themselves
    4000  | SLOW_CONSUMER              | yes       | resume from the last event id
    4001  | UNAUTHORIZED               | no        | needs new credentials
    4002  | HEARTBEAT_TIMEOUT          | yes       | the link went quiet; a new one may work
    4003  | FORBIDDEN                  | no        | needs other permissions
    4004  | NOT_FOUND                  | no        | the topic does not exist
    4005  | INVALID_MESSAGE            | no        | the client would send it again
    4008  | RATE_LIMITED               | yes       | only after the backoff delay
    other | (unknown)                  | no        | without knowing why, do not hammer the server
    """
    return code is None or code in _RECONNECT
