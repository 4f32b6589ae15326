"""Server policy over real sockets: each refusal has its status or close code, a log
line, and no effect on the other connections."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import trio
import trio.testing
from wsproto.events import AcceptConnection, CloseConnection, RejectConnection, TextMessage

from tests.websocket._ws_helpers import RawClient, running_server
from tests.websocket.conftest import OpenRaw
from trio_stream.protocol import CloseCode
from trio_stream.websocket import HandshakeRejected, HandshakeRequest, WebSocketPeer

LOGGER = "trio_stream.websocket"


async def echo(peer: WebSocketPeer) -> None:
    async for message in peer:
        await peer.send({"echo": message, "identity": peer.identity})


async def open_bystander(open_raw: OpenRaw, port: int) -> RawClient:
    """A healthy connection opened before a fault, to check it later."""
    client = await open_raw(port)
    assert isinstance(await client.handshake(), AcceptConnection)
    return client


async def assert_still_served(client: RawClient) -> None:
    await client.send(TextMessage(data='"still here"'))
    event = await client.next_event()
    assert isinstance(event, TextMessage)
    assert json.loads(event.data)["echo"] == "still here"


def logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in r.getMessage() and r.name == LOGGER for r in caplog.records)


async def test_echo_and_statistics(open_raw: OpenRaw) -> None:
    async with running_server(echo) as server:
        assert server.url == f"ws://127.0.0.1:{server.port}"
        client = await open_bystander(open_raw, server.port)
        await assert_still_served(client)
        stats = server.statistics()
        assert (stats.open, stats.accepted, stats.messages_received) == (1, 1, 1)
        (peer,) = server.peers
        assert "ws#1" in repr(peer)
        assert await close_politely(client) == CloseCode.NORMAL_CLOSURE
        with trio.fail_after(5):
            await peer.wait_closed()
        assert peer.close_code == CloseCode.NORMAL_CLOSURE
    stats = server.statistics()
    assert (stats.open, stats.closed, stats.messages_sent) == (0, {1000: 1}, 1)


async def close_politely(client: RawClient) -> int | None:
    await client.send(CloseConnection(code=1000))
    return await client.close_code()


async def authenticate(request: HandshakeRequest) -> Any:
    await trio.lowlevel.checkpoint()
    token = request.query.get("token") or request.cookies.get("token")
    if token == "good":
        return {"user": "ann"}
    if token == "banned":
        raise HandshakeRejected(403, "user is banned", body=b"go away\n")
    if token == "crash":
        raise RuntimeError("secret internal detail")
    return None


async def test_authentication_hook(open_raw: OpenRaw, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    async with running_server(echo, authenticate=authenticate) as server:
        bystander = await open_raw(server.port)
        assert isinstance(await bystander.handshake("/?token=good"), AcceptConnection)

        cases = [("/", 401, b"unauthorized\n"), ("/?token=banned", 403, b"go away\n")]
        cases.append(("/?token=crash", 500, b"internal error\n"))
        for path, status, body in cases:
            client = await open_raw(server.port)
            rejection = await client.handshake(path)
            assert isinstance(rejection, RejectConnection)
            assert rejection.status_code == status
            assert await client.reject_body() == body  # never the exception's text
            await client.aclose()
        assert logged(caplog, "handshake rejected with 401: not authenticated")
        assert logged(caplog, "handshake rejected with 403: user is banned")
        assert logged(caplog, "authenticate hook failed")
        with_cookie = await open_raw(server.port)
        accepted = await with_cookie.handshake("/", [("Cookie", "token=good")])
        assert isinstance(accepted, AcceptConnection)
        await assert_still_served(bystander)
        assert server.statistics().rejected == {401: 1, 403: 1, 500: 1}


async def test_origin_allow_list(open_raw: OpenRaw, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    async with running_server(echo, allowed_origins=["https://app.example"]) as server:
        bystander = await open_bystander(open_raw, server.port)  # no Origin: allowed
        evil = await open_raw(server.port)
        rejection = await evil.handshake("/", [("Origin", "https://evil.example")])
        assert isinstance(rejection, RejectConnection)
        assert rejection.status_code == 403
        assert logged(caplog, "origin 'https://evil.example' not allowed")
        good = await open_raw(server.port)
        own = await good.handshake("/", [("Origin", "https://APP.example:443")])
        assert isinstance(own, AcceptConnection)
        await assert_still_served(good)
        await assert_still_served(bystander)


async def test_connection_limits(open_raw: OpenRaw, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    async with running_server(echo, max_connections=2, max_connections_per_client=1) as server:
        first = await open_bystander(open_raw, server.port)
        second = await open_raw(server.port)
        rejection = await second.handshake()
        assert isinstance(rejection, RejectConnection)
        assert rejection.status_code == 429
        assert logged(caplog, "handshake rejected with 429")
        await assert_still_served(first)
    async with running_server(echo, max_connections=1) as server:
        first = await open_bystander(open_raw, server.port)
        second = await open_raw(server.port)
        rejection = await second.handshake()
        assert isinstance(rejection, RejectConnection)
        assert rejection.status_code == 503
        await assert_still_served(first)


def no_dicts(message: Any) -> Any:
    if isinstance(message, dict):
        raise ValueError("no dicts")
    return message


@pytest.mark.parametrize(
    ("options", "payloads", "code", "log_text"),
    [
        ({"max_message_size": 1000}, ["x" * 1001], 1009, "over the size limit"),
        ({}, ["{not json"], 1007, "frame is not valid JSON"),
        ({"validate": no_dicts}, ['{"n": 1}'], 1007, "message rejected: no dicts"),
        ({"rate_limit": 1.0, "rate_burst": 3}, ["1"] * 4, 4008, "over the rate limit"),
    ],
    ids=["oversized-1009", "undecodable-1007", "invalid-1007", "rate-limited-4008"],
)
async def test_bad_messages_close_with_their_code(
    open_raw: OpenRaw,
    caplog: pytest.LogCaptureFixture,
    options: dict[str, Any],
    payloads: list[str],
    code: int,
    log_text: str,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    async with running_server(echo, **options) as server:
        bystander = await open_bystander(open_raw, server.port)
        offender = await open_bystander(open_raw, server.port)
        for payload in payloads:
            await offender.send(TextMessage(data=payload))
        with trio.fail_after(5):
            assert await offender.close_code() == code
            await offender.wait_eof()  # the server is done with it
        assert logged(caplog, log_text)
        await assert_still_served(bystander)


async def test_failing_handler_closes_1011_and_others_continue(
    open_raw: OpenRaw,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(peer: WebSocketPeer) -> None:
        async for message in peer:
            if message == "boom":
                raise RuntimeError("secret internal detail")
            await peer.send({"echo": message})

    async with running_server(handler) as server:
        bystander = await open_bystander(open_raw, server.port)
        victim = await open_bystander(open_raw, server.port)
        await victim.send(TextMessage(data='"boom"'))
        while not isinstance(event := await victim.next_event(), CloseConnection):
            pass
        assert event.code == CloseCode.INTERNAL_ERROR
        assert "secret" not in (event.reason or "")
        assert any(r.exc_info and "handler raised" in r.getMessage() for r in caplog.records)
        await assert_still_served(bystander)


async def test_shutdown_closes_with_going_away(open_raw: OpenRaw) -> None:
    async with trio.open_nursery() as nursery:
        scope = trio.CancelScope()

        async def run_server(task_status: trio.TaskStatus[int]) -> None:  # noqa: ASYNC114
            with scope:
                async with running_server(echo) as server:
                    task_status.started(server.port)
                    await trio.sleep_forever()

        port = await nursery.start(run_server)
        client = await open_bystander(open_raw, port)
        scope.cancel()
        with trio.fail_after(5):
            assert await client.close_code() == CloseCode.GOING_AWAY


async def test_subprotocol_is_negotiated_and_handshake_is_bounded(
    open_raw: OpenRaw,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    async with running_server(echo, subprotocols=["v2", "v1"], handshake_timeout=0.05) as server:
        client = await open_raw(server.port)
        await client.stream.send_all(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Protocol: v1, v3\r\n\r\n"
        )
        response = await client.stream.receive_some()
        assert b"101" in response.split(b"\r\n")[0]
        assert b"sec-websocket-protocol: v1" in response.lower()
        silent = await open_raw(server.port)  # never sends a handshake
        with trio.fail_after(5):
            assert await silent.stream.receive_some() == b""
        assert logged(caplog, "no complete handshake within")


async def test_a_slow_authenticate_hook_is_bounded_by_the_handshake_timeout(
    open_raw: OpenRaw, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)

    async def stuck(request: HandshakeRequest) -> None:
        await trio.sleep_forever()

    async with running_server(echo, authenticate=stuck, handshake_timeout=0.05) as server:
        client = await open_raw(server.port)
        await client.stream.send_all(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        with trio.fail_after(5):
            await client.wait_eof()
            await trio.testing.wait_all_tasks_blocked()
        assert logged(caplog, "handshake checks took over")
        assert server.statistics().open == 0
