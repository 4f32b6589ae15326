"""The demo's WebSocket rooms: /ws/{topic}, presence, origins, limits, token, resume."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio

from tests.demo._demo_helpers import (
    SAFETY,
    demo_client,
    publish,
    read_metrics,
    running_demo,
    sse_stream,
    ws_connect,
    ws_receive,
)
from trio_stream.demo import DemoServer
from trio_stream.protocol import CloseCode
from trio_stream.websocket import WebSocketClosed, WebSocketRejected, open_websocket_client


class _Frames:
    """A codec that sends text frames exactly as given (to send malformed ones)."""

    name = "frames"

    def encode(self, obj: Any) -> str:
        return str(obj)

    def decode(self, frame: str | bytes) -> Any:
        return json.loads(frame)


async def _close_code(server: DemoServer, path: str, frame: str) -> int:
    """The code the server closes with after ``frame`` (the library client closes its
    socket on a server close; trio-websocket's own client leaves it open)."""

    async def send_and_wait() -> None:
        url = server.ws_url + path
        async with open_websocket_client(url, codec=_Frames(), max_attempts=1) as client:
            await client.send(frame)
            await trio.sleep_forever()

    with trio.fail_after(SAFETY), pytest.raises(WebSocketClosed) as closed:
        await send_and_wait()
    return closed.value.code


async def _rejection(server: DemoServer, path: str, origin: str | None = None) -> int:
    headers = {"origin": origin} if origin is not None else None
    with trio.fail_after(SAFETY), pytest.raises(WebSocketRejected) as rejected:
        async with open_websocket_client(server.ws_url + path, headers=headers, max_attempts=1):
            pass  # pragma: no cover - the handshake fails
    return rejected.value.status_code


async def test_message_reaches_everyone_with_the_id_sse_readers_see() -> None:
    async with (
        running_demo(ticker_interval=0) as server,
        demo_client(server) as client,
        sse_stream(client, "/sse/chat") as reader,
        ws_connect(server, "/ws/chat?name=ann") as ann,
        ws_connect(server, "/ws/chat?name=bob") as bob,
    ):
        with trio.fail_after(SAFETY):
            await ws_receive(ann, "presence")  # ann joined
            await ws_receive(ann, "presence")  # bob joined
            await ann.send_message(json.dumps({"data": {"name": "ann", "text": "hi"}}))
            to_ann = await ws_receive(ann, "message")
            to_bob = await ws_receive(bob, "message")
            sse_events = [e for e in await reader.events(3) if e.event == "message"]
    assert to_ann == to_bob
    assert json.loads(to_ann["data"]) == {"name": "ann", "text": "hi"}
    assert [e.id for e in sse_events] == [to_ann["id"]]


async def test_presence_lists_who_joins_and_leaves() -> None:
    async with (
        running_demo(ticker_interval=0) as server,
        ws_connect(server, "/ws/lobby?name=ann") as ann,
    ):
        with trio.fail_after(SAFETY):
            first = await ws_receive(ann, "presence")
            async with ws_connect(server, "/ws/lobby?name=bob%0A%3Cb%3E") as bob:
                joined = await ws_receive(ann, "presence")
                await ws_receive(bob, "presence")
                assert server.app.rooms.present("lobby") == ["ann", "bobb"]
            left = await ws_receive(ann, "presence")
    assert json.loads(first["data"]) == {"users": ["ann"], "joined": "ann"}
    assert json.loads(joined["data"]) == {"users": ["ann", "bobb"], "joined": "bobb"}
    assert json.loads(left["data"]) == {"users": ["ann"], "left": "bobb"}


async def test_origin_of_the_page_is_accepted_and_others_refused() -> None:
    async with running_demo(ticker_interval=0) as server, demo_client(server) as client:
        foreign = await _rejection(server, "/ws/chat", origin="http://evil.example")
        for origin in (f"http://localhost:{server.port}", server.url, None):
            async with ws_connect(server, "/ws/chat", origin=origin) as ws:
                with trio.fail_after(SAFETY):
                    await ws_receive(ws, "presence")
        stats = await read_metrics(client)
    assert foreign == 403
    assert stats['trio_stream_websocket_rejected_total{status="403"}'] == 1


async def test_unknown_path_is_404_and_bad_topic_400() -> None:
    async with running_demo(ticker_interval=0) as server:
        assert await _rejection(server, "/elsewhere") == 404
        assert await _rejection(server, "/ws/bad*topic") == 400
        assert await _rejection(server, "/ws/chat?last_event_id=" + "x" * 300) == 400


async def test_message_over_one_mebibyte_is_closed_with_1009() -> None:
    async with running_demo(ticker_interval=0) as server:
        frame = json.dumps({"data": "x" * (1024 * 1024)})
        assert await _close_code(server, "/ws/chat", frame) == 1009


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        json.dumps([1]),
        json.dumps({"text": "no data"}),
        json.dumps({"data": 1, "event": "a b"}),
    ],
    ids=["not-json", "not-object", "no-data", "bad-event"],
)
async def test_undecodable_message_is_closed_with_1007(message: str) -> None:
    async with running_demo(ticker_interval=0) as server, demo_client(server) as client:
        assert await _close_code(server, "/ws/chat", message) == 1007
        assert (await client.get("/healthz")).status_code == 200


async def test_token_guards_publishing_over_websockets() -> None:
    async with running_demo(ticker_interval=0, token="s3cret") as server:
        assert await _rejection(server, "/ws/chat?token=wrong") == 401
        async with ws_connect(server, "/ws/chat?token=s3cret") as writer:
            await writer.send_message(json.dumps({"data": "allowed"}))
            with trio.fail_after(SAFETY):
                assert (await ws_receive(writer, "message"))["data"] == "allowed"
        refused = json.dumps({"data": "refused"})
        assert await _close_code(server, "/ws/chat", refused) == CloseCode.FORBIDDEN


async def test_reconnect_resumes_after_last_event_id() -> None:
    async with running_demo(ticker_interval=0) as server, demo_client(server) as client:
        seen = await publish(client, "news", "seen")
        missed = await publish(client, "news", "missed")
        async with ws_connect(server, f"/ws/news?last_event_id={seen}") as ws:
            with trio.fail_after(SAFETY):
                replayed = await ws_receive(ws)
        async with ws_connect(server, "/ws/news?last_event_id=0000-1") as ws:
            with trio.fail_after(SAFETY):
                reset = await ws_receive(ws)
        stats = await read_metrics(client)
    assert (replayed["id"], replayed["data"]) == (missed, "missed")
    assert reset == {"id": None, "event": "reset", "data": ""}
    assert stats['trio_stream_resumes_total{transport="websocket",outcome="recovered"}'] == 1
    assert stats['trio_stream_resumes_total{transport="websocket",outcome="reset"}'] == 1


async def test_metrics_count_open_connections_and_events() -> None:
    async with (
        running_demo() as server,
        demo_client(server) as client,
        sse_stream(client, "/sse/ticker") as reader,
        ws_connect(server) as ws,
    ):
        with trio.fail_after(SAFETY):
            await reader.events(2)
            await ws_receive(ws, "presence")
        during = await read_metrics(client)
    assert during['trio_stream_connections_open{transport="sse"}'] == 1
    assert during['trio_stream_connections_open{transport="websocket"}'] == 1
    assert during['trio_stream_events_sent_total{transport="sse"}'] >= 2
    assert during['trio_stream_events_sent_total{transport="websocket"}'] >= 1
    assert during["trio_stream_room_visitors"] == 1
    assert during["trio_stream_hub_subscribers"] >= 2
