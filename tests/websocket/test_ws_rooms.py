"""Hub topics as rooms: the same events, with the same ids, as every other reader."""

from __future__ import annotations

import json
from typing import Any

import trio
import trio.testing
from wsproto.events import AcceptConnection

from tests.websocket._ws_helpers import RawClient, running_server
from trio_stream.core import Hub, Overflow
from trio_stream.protocol import CloseCode, Event
from trio_stream.websocket import JsonCodec, WebSocketPeer, open_websocket_client


def room_handler(hub_events: list[str] | None = None) -> Any:
    """``/ws/{topic}?last_event_id=``: join the topic; ``{"data": x}`` publishes x."""

    async def handler(peer: WebSocketPeer) -> None:
        topic = peer.request.path.rsplit("/", 1)[-1]
        last_event_id = peer.request.query.get("last_event_id")
        recovered = await peer.subscribe(topic, last_event_id=last_event_id)
        await peer.send({"joined": topic, "recovered": recovered, "topics": sorted(peer.topics)})
        async for message in peer:
            if message == "leave":
                peer.unsubscribe(topic)
                await peer.send({"left": sorted(peer.topics)})
            else:
                event = await peer.publish(topic, Event.json(message["data"]))
                if hub_events is not None:
                    hub_events.append(event.id or "")

    return handler


async def test_websocket_rooms_share_events_and_ids_with_hub_readers() -> None:
    hub = Hub()
    published: list[str] = []
    async with (
        running_server(room_handler(published), hub=hub) as server,
        hub.subscribe("chat") as direct,  # what an SSE reader of the topic gets
        open_websocket_client(server.url + "/ws/chat") as alice,
        open_websocket_client(server.url + "/ws/chat") as bob,
    ):
        with trio.fail_after(10):
            assert await alice.__anext__() == {
                "joined": "chat",
                "recovered": False,
                "topics": ["chat"],
            }
            assert (await bob.__anext__())["joined"] == "chat"
            await alice.send({"data": {"text": "hi"}})
            from_hub = (await direct.receive_batch())[0]
            frames = [await alice.__anext__(), await bob.__anext__()]
        expected = {"id": from_hub.id, "event": "message", "data": '{"text":"hi"}'}
        assert frames == [expected, expected]
        assert published == [from_hub.id]
        assert from_hub.data == '{"text":"hi"}'


class CountingCodec(JsonCodec):
    def __init__(self) -> None:
        super().__init__()
        self.topic_frames = 0

    def encode(self, obj: Any) -> str:
        self.topic_frames += isinstance(obj, dict) and "id" in obj
        return super().encode(obj)


async def test_each_event_is_encoded_once_for_all_subscribers() -> None:
    hub, codec = Hub(), CountingCodec()
    async with running_server(room_handler(), hub=hub, codec=codec) as server:
        clients = [open_websocket_client(server.url + "/ws/news") for _ in range(4)]
        async with clients[0] as a, clients[1] as b, clients[2] as c, clients[3] as d:
            readers = [a, b, c, d]
            with trio.fail_after(10):
                for reader in readers:
                    assert (await reader.__anext__())["joined"] == "news"
                for n in range(5):
                    await hub.publish("news", Event(str(n)))
                for reader in readers:
                    got = [(await reader.__anext__())["data"] for _ in range(5)]
                    assert got == ["0", "1", "2", "3", "4"]
    assert codec.topic_frames == 5


async def test_resume_from_last_event_id_and_leave() -> None:
    hub = Hub()
    ids = [(await hub.publish("t", Event(str(n)))).id for n in range(3)]
    async with running_server(room_handler(), hub=hub) as server:
        url = f"{server.url}/ws/t?last_event_id={ids[0]}"
        async with open_websocket_client(url) as client:
            with trio.fail_after(10):
                # The replay starts as soon as subscribe() returns: it may come
                # before or after the handler's own "joined" message.
                frames = [await client.__anext__() for _ in range(3)]
                joined = [frame for frame in frames if "joined" in frame]
                assert joined[0]["recovered"] is True
                assert [frame["id"] for frame in frames if "id" in frame] == ids[1:]
                await client.send("leave")
                assert await client.__anext__() == {"left": []}
                await hub.publish("t", Event("after leaving"))  # not for us any more
                await client.send("leave")
                assert await client.__anext__() == {"left": []}
        async with open_websocket_client(f"{server.url}/ws/t?last_event_id=unknown") as client:
            with trio.fail_after(10):
                assert (await client.__anext__())["recovered"] is False


async def test_subscribe_misuse_is_reported_to_the_handler() -> None:
    outcomes: list[str] = []

    async def handler(peer: WebSocketPeer) -> None:
        for attempt in ("bad topic!", "ok", "ok"):
            try:
                await peer.subscribe(attempt)
                outcomes.append("subscribed")
            except ValueError as exc:
                outcomes.append(type(exc).__name__)
        await peer.send("done")

    async with (
        running_server(handler, hub=Hub()) as server,
        open_websocket_client(server.url) as client,
    ):
        with trio.fail_after(10):
            assert await client.__anext__() == "done"
    assert outcomes == ["InvalidTopicError", "subscribed", "ValueError"]

    async def no_hub(peer: WebSocketPeer) -> None:
        await trio.lowlevel.checkpoint()
        for call in (peer.subscribe("t"), peer.publish("t", Event("x"))):
            try:
                await call
            except RuntimeError as exc:
                outcomes.append(str(exc))

    async with running_server(no_hub) as server, open_websocket_client(server.url):
        pass
    assert all("hub=" in text for text in outcomes[3:])
    assert len(outcomes) == 5


async def test_a_room_member_that_falls_behind_is_told_to_reconnect(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The client stalls long enough for more than `capacity` of the topic's
    # events to wait for it, then reads again: it gets the rest of what was in
    # flight and a 4000 close, its cue to reconnect and resume from its last id.
    hub = Hub()
    joined = trio.Event()

    async def handler(peer: WebSocketPeer) -> None:
        await peer.subscribe("fast", capacity=2)
        joined.set()
        await peer.wait_closed()

    options = {
        "hub": hub,
        "outbound_capacity": 1,
        "outbound_overflow": Overflow.BLOCK,
        "send_timeout": 1000.0,
        "heartbeat_interval": None,
    }
    async with running_server(handler, **options) as server, trio.open_nursery() as nursery:
        client_side, server_side = trio.testing.lockstep_stream_pair()
        nursery.start_soon(server.serve_stream, server_side)
        stalled = RawClient(client_side)  # not reading for now
        assert isinstance(await stalled.handshake("/"), AcceptConnection)
        await joined.wait()
        (peer,) = server.peers
        for n in range(10):
            await hub.publish("fast", Event(json.dumps(n)))
        assert await stalled.close_code() == CloseCode.SLOW_CONSUMER  # reads again
        await peer.wait_closed()
        assert hub.statistics().subscribers == 0  # its room closed with it
        assert server.subscribers("fast") == 0
        nursery.cancel_scope.cancel()
    assert server.statistics().slow_consumers == 1
