"""Every bad input tried, and what it gets: the data behind ``docs/security.md``'s table.

Each :class:`BadInput` is executed by ``tests/test_bad_inputs.py`` against the
real components (the demo on Hypercorn and trio-websocket, the SSE client over
httpx, the LLM relay), which asserts the outcome, the log line and that other
clients keep being served. The same test renders :func:`markdown_table` and
compares it with the docs, so the page cannot drift from what the code does.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CASES", "TABLE_END", "TABLE_START", "BadInput", "markdown_table"]

TABLE_START = "<!-- bad-inputs:start (generated from tests/bad_inputs.py) -->"
TABLE_END = "<!-- bad-inputs:end -->"


@dataclass(frozen=True, slots=True)
class BadInput:
    """One bad input: where it is sent, what it is, what the sender gets, where it is logged.

    ``outcome`` is exactly what the test observes: ``400 "reason"`` (HTTP
    status and the text the client reads), ``handshake 403`` (WebSocket
    opening refused), ``close 1009 "reason"`` (WebSocket close code and
    reason), or a typed exception raised to the calling code. ``logged`` is
    ``"logger LEVEL"`` of the line that records it.
    """

    id: str
    transport: str
    input: str
    outcome: str
    logged: str


_HTTP = "HTTP (demo)"
_HUB = "HTTP (`hub_endpoint`)"
_LIMITS = "HTTP (`hub_endpoint` + middleware)"
_WS = "WebSocket (demo)"
_CLIENT = "SSE client"
_LLM = "LLM relay (demo)"
_PARSER = "OpenAI chunk parser"

CASES: tuple[BadInput, ...] = (
    BadInput(
        "last-event-id-malformed",
        _HTTP,
        "`GET /sse/t` with a `Last-Event-ID` holding a non-ASCII byte",
        '400 "Last-Event-ID has invalid characters"',
        "trio_stream.sse WARNING",
    ),
    BadInput(
        "last-event-id-too-long",
        _HTTP,
        "`GET /sse/t` with a 257-character `Last-Event-ID`",
        '400 "Last-Event-ID too long"',
        "trio_stream.sse WARNING",
    ),
    BadInput(
        "topic-invalid",
        _HTTP,
        "`GET /sse/a%20b` (a space in the topic name)",
        '400 "invalid topic"',
        "trio_stream.sse WARNING",
    ),
    BadInput(
        "topic-crlf",
        _HTTP,
        "`GET /sse/a%0D%0Aevent:x` (CR/LF in the topic name)",
        '400 "invalid topic"',
        "trio_stream.sse WARNING",
    ),
    BadInput(
        "topic-too-long",
        _HTTP,
        "`GET /sse/` + a 201-character topic name",
        '400 "invalid topic"',
        "trio_stream.sse WARNING",
    ),
    BadInput(
        "topic-unknown",
        _HUB,
        "`GET /sse/other` where `topics={'news'}`",
        '404 "unknown topic"',
        "trio_stream.sse WARNING",
    ),
    BadInput(
        "header-too-large",
        _HTTP,
        "a request head over `max_header_size` (a 20 KiB header)",
        '431 "request header fields too large"',
        "trio_stream.sse WARNING",
    ),
    BadInput(
        "publish-too-large",
        _HTTP,
        "`POST /api/topics/t` with a body over `max_body_size` (1 MiB + 1)",
        '413 "request body too large"',
        "trio_stream.demo WARNING",
    ),
    BadInput(
        "publish-not-json",
        _HTTP,
        "`POST /api/topics/t` with `{not json`",
        '400 "request body is not valid JSON"',
        "trio_stream.demo WARNING",
    ),
    BadInput(
        "publish-not-object",
        _HTTP,
        "`POST /api/topics/t` with `[1, 2]`",
        '400 "request body must be a JSON object"',
        "trio_stream.demo WARNING",
    ),
    BadInput(
        "publish-no-data",
        _HTTP,
        '`POST /api/topics/t` with `{"event": "x"}` (no `data`)',
        "400 \"the body needs a 'data' field\"",
        "trio_stream.demo WARNING",
    ),
    BadInput(
        "publish-deeply-nested",
        _HTTP,
        "`POST /api/topics/t` with 100,000 nested `[`",
        '400 "request body is not valid JSON"',
        "trio_stream.demo WARNING",
    ),
    BadInput(
        "publish-event-newline",
        _HTTP,
        '`POST /api/topics/t` with `{"data": "x", "event": "a\\ndata: y"}`',
        "400 \"'event' may not contain line breaks\"",
        "trio_stream.demo WARNING",
    ),
    BadInput(
        "publish-unauthenticated",
        _HTTP,
        "`POST /api/topics/t` without the bearer token (`--token` set)",
        '401 "a valid bearer token is required"',
        "trio_stream.demo WARNING",
    ),
    BadInput(
        "chat-unauthenticated",
        _HTTP,
        "`POST /v1/chat/completions` without the bearer token (`--token` set)",
        '401 "a valid bearer token is required"',
        "trio_stream.demo WARNING",
    ),
    BadInput(
        "chat-bad-body",
        _HTTP,
        '`POST /v1/chat/completions` with `{"messages": "hi"}`',
        "400 \"'messages' must be a non-empty list\"",
        "trio_stream.llm WARNING",
    ),
    BadInput(
        "ws-bad-origin",
        _WS,
        "opening handshake with `Origin: https://evil.example`",
        "handshake 403",
        "trio_stream.websocket WARNING",
    ),
    BadInput(
        "ws-wrong-token",
        _WS,
        "opening handshake with a wrong `?token=` (`--token` set)",
        "handshake 401",
        "trio_stream.websocket WARNING",
    ),
    BadInput(
        "ws-invalid-topic",
        _WS,
        "opening handshake for `/ws/a%20b`",
        "handshake 400",
        "trio_stream.websocket WARNING",
    ),
    BadInput(
        "ws-publish-without-token",
        _WS,
        "a message from a client that sent no token (`--token` set)",
        'close 4003 "publishing needs the token"',
        "trio_stream.demo INFO",
    ),
    BadInput(
        "ws-too-big",
        _WS,
        "a text message over `max_message_size` (1 MiB + 1)",
        'close 1009 "Exceeded maximum message size: 1048576 bytes"',
        "trio_stream.websocket WARNING",
    ),
    BadInput(
        "ws-not-json",
        _WS,
        "a text message `{not json`",
        'close 1007 "invalid message"',
        "trio_stream.websocket WARNING",
    ),
    BadInput(
        "ws-wrong-shape",
        _WS,
        'a text message `[1, 2]` (valid JSON, not `{"data": ...}`)',
        'close 1007 "invalid message"',
        "trio_stream.websocket WARNING",
    ),
    BadInput(
        "ws-binary-not-utf8",
        _WS,
        "a binary message `b'\\xff\\xfe'`",
        'close 1007 "invalid message"',
        "trio_stream.websocket WARNING",
    ),
    BadInput(
        "ws-rate",
        _WS,
        "300 messages at once (over `rate_burst`=100 at `rate_limit`=50/s)",
        'close 4008 "rate limit exceeded"',
        "trio_stream.websocket WARNING",
    ),
    BadInput(
        "sse-line-too-long",
        _CLIENT,
        "a server sends a line over `max_line_length`",
        "`SSEDecodeError` from `open_event_source`",
        "trio_stream.sse WARNING",
    ),
    BadInput(
        "sse-event-too-large",
        _CLIENT,
        "a server sends an event whose data grows over `max_event_size`",
        "`SSEDecodeError` from `open_event_source`",
        "trio_stream.sse WARNING",
    ),
    BadInput(
        "llm-bad-chunk",
        _LLM,
        "the upstream sends `data: {not json` in its stream",
        '200, then the error chunk "The model failed to answer.", then `[DONE]`',
        "trio_stream.llm WARNING",
    ),
    BadInput(
        "chunk-not-json",
        _PARSER,
        "`ChatChunkParser.feed` gets data `{not json`",
        "`ChunkDecodeError`",
        "-",
    ),
    BadInput(
        "sse-unauthenticated",
        _LIMITS,
        "`GET /sse/t` without credentials, behind `Authenticated`",
        '401 "not authenticated" + `WWW-Authenticate: Bearer`',
        "trio_stream.sse WARNING",
    ),
    BadInput(
        "sse-forbidden-topic",
        _LIMITS,
        "`GET /sse/private.ada` as bob: the hook raises `RequestRejected(403, ...)`",
        '403 "forbidden"',
        "trio_stream.sse WARNING",
    ),
    BadInput(
        "sse-too-many-per-client",
        _LIMITS,
        "a second stream from one address, `ConnectionLimits(max_per_client=1)`",
        '429 "too many open streams; retry later" + `Retry-After: 5`',
        "trio_stream.sse WARNING",
    ),
    BadInput(
        "sse-server-full",
        _LIMITS,
        "a stream past `ConnectionLimits(max_connections=1)`",
        '503 "server busy; retry later" + `Retry-After: 5`',
        "trio_stream.sse WARNING",
    ),
    BadInput(
        "publish-rate-exceeded",
        _LIMITS,
        "a third `POST` within a second, `RateLimit(rate=1, burst=2)`",
        '429 "too many requests; retry later" + `Retry-After: 1`',
        "trio_stream.sse WARNING",
    ),
    BadInput(
        "cors-preflight-refused",
        _LIMITS,
        "a CORS preflight from an origin not in `CORS(allow_origins=...)`",
        '403 "CORS request not allowed" (no `Access-Control-*` header)',
        "trio_stream.sse WARNING",
    ),
)
"""The cases, in the order of the docs table."""


def markdown_table(cases: tuple[BadInput, ...] = CASES) -> str:
    """The docs table of ``cases``: one row each (pipes in cells escaped)."""
    rows = [
        "| Transport | Bad input | What the sender gets | Logged on |",
        "|---|---|---|---|",
    ]
    for case in cases:
        cells = (case.transport, case.input, case.outcome, case.logged)
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows) + "\n"
