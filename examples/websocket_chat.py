"""Lesson: a chat room is a Hub topic; the WebSocket server only enforces policy.

``serve_websockets`` runs every connection in its own nursery with a
heartbeat, a bounded outbound queue and limits; the handler is plain code:
join the room (``peer.subscribe`` forwards the topic's events to this peer,
from a task the peer's nursery owns) and publish what the peer says. Bad
input is refused before the handler sees it: an unknown room in the
handshake (404), an invalid message closes with 1007, a flood with 4008.

Run:  python examples/websocket_chat.py --port 8001
      python -m websockets "ws://127.0.0.1:8001/chat/lobby?name=you"
      then type {"text": "hello"}
Test: python examples/websocket_chat.py --port 0 --self-test
"""

from __future__ import annotations

import argparse
import json
from functools import partial
from typing import Any

import trio

from trio_stream import (
    Event,
    HandshakeRejected,
    HandshakeRequest,
    Hub,
    WebSocketPeer,
    WebSocketRejected,
    WebSocketServer,
    open_websocket_client,
    serve_websockets,
)

ROOMS = {"lobby", "random"}


async def admit(request: HandshakeRequest) -> str:
    # The handshake hook: decide BEFORE accepting. What it returns becomes
    # peer.identity; raising HandshakeRejected answers with an HTTP status.
    await trio.lowlevel.checkpoint()  # a real hook would await a session store here
    if request.path.removeprefix("/chat/") not in ROOMS:
        raise HandshakeRejected(404, f"no such room: {request.path!r}")
    return request.query.get("name", "anonymous")[:20]


def validate(message: Any) -> str:
    # Runs on the connection's reader: a ValueError closes it with 1007 and a
    # fixed reason (never this text); the handler only ever sees clean input.
    text = message.get("text") if isinstance(message, dict) else None
    if not isinstance(text, str):
        raise ValueError('expected {"text": "..."}')
    text = text.strip()
    if not 0 < len(text) <= 500:
        raise ValueError("text must be 1-500 characters")
    return text


async def chat(peer: WebSocketPeer) -> None:
    topic = "chat." + peer.request.path.removeprefix("/chat/")
    # A page that stored its position comes back with ?last_event_id=: the
    # Hub replays what it missed before live messages.
    await peer.subscribe(topic, last_event_id=peer.request.query.get("last_event_id"))
    await peer.send({"event": "joined", "room": topic})
    async for text in peer:  # ends when the connection closes
        await peer.publish(topic, Event.json({"from": peer.identity, "text": text}, event="chat"))


async def self_test(url: str, server: WebSocketServer) -> None:
    try:  # a policy refusal is final: the client does not retry a 404
        async with open_websocket_client(f"{url}/chat/nowhere"):
            raise AssertionError("an unknown room must be refused")
    except WebSocketRejected as exc:
        print("unknown room refused with HTTP", exc.status_code)
    async with (
        open_websocket_client(f"{url}/chat/lobby?name=alice") as alice,
        open_websocket_client(f"{url}/chat/lobby?name=bob") as bob,
    ):
        # Wait for both "joined" frames: from then on both are in the room.
        assert (await anext(alice))["event"] == (await anext(bob))["event"] == "joined"
        await alice.send({"text": "hi from alice"})  # queued in the outbox, sent in order
        to_alice, to_bob = await anext(alice), await anext(bob)
    # Every member, the sender included, gets the same event with the same id
    # (the id SSE readers of the topic would see too).
    assert to_alice == to_bob, (to_alice, to_bob)
    said = json.loads(to_bob["data"])
    print(f"bob got {said['text']!r} from {said['from']} as event {to_bob['id']}")
    stats = server.statistics()
    print(f"self-test ok: chat delivered to 2 members; accepted={stats.accepted}")


async def main(args: argparse.Namespace) -> None:
    hub = Hub()
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            partial(
                serve_websockets,
                chat,
                host=args.host,
                port=args.port,
                hub=hub,
                authenticate=admit,
                validate=validate,
                # Browsers always send Origin: only your own pages may connect
                # (cross-site WebSocket hijacking). Scripts send none and pass.
                allowed_origins=["http://localhost:8000", "http://127.0.0.1:8000"],
                rate_limit=5.0,  # messages per second per connection (bursts of 100)
            )
        )
        print(f"chat on {server.url}/chat/lobby?name=you")
        if args.self_test:
            with trio.fail_after(20):  # a safety bound, not a wait
                await self_test(server.url, server)
            nursery.cancel_scope.cancel()  # open connections get 1001 "going away"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--self-test", action="store_true", help="run two clients, then exit")
    try:
        trio.run(main, parser.parse_args())
    except* KeyboardInterrupt:  # Ctrl-C: the nurseries have cleaned up on the way out
        print("stopped")
