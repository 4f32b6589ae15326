"""WebSockets over trio-websocket: a hardened server and a reconnecting client.

The server (:func:`serve_websockets`) adds what trio-websocket leaves to the
application: a handshake hook for authentication, an Origin allow-list, a
heartbeat, size / rate / validation limits with documented close codes,
connection limits, a bounded outbound queue with an overflow policy, and Hub
topics as rooms. The client (:func:`open_websocket_client`) reconnects with
backoff, keeps a bounded outbox, and resubscribes on every connection.
"""

from ._client import ClientSession as ClientSession
from ._client import WebSocketClient as WebSocketClient
from ._client import open_websocket_client as open_websocket_client
from ._codec import Codec as Codec
from ._codec import DecodeError as DecodeError
from ._codec import JsonCodec as JsonCodec
from ._codec import MsgPackCodec as MsgPackCodec
from ._errors import HandshakeRejected as HandshakeRejected
from ._errors import WebSocketClosed as WebSocketClosed
from ._errors import WebSocketError as WebSocketError
from ._errors import WebSocketRejected as WebSocketRejected
from ._frames import EventFrameCache as EventFrameCache
from ._frames import event_message as event_message
from ._handshake import HandshakeRequest as HandshakeRequest
from ._handshake import normalize_origin as normalize_origin
from ._peer import WebSocketPeer as WebSocketPeer
from ._records import ClientStatistics as ClientStatistics
from ._records import PeerStatistics as PeerStatistics
from ._records import WebSocketServerStatistics as WebSocketServerStatistics
from ._server import WebSocketServer as WebSocketServer
from ._server import serve_websockets as serve_websockets

__all__ = [
    "ClientSession",
    "ClientStatistics",
    "Codec",
    "DecodeError",
    "EventFrameCache",
    "HandshakeRejected",
    "HandshakeRequest",
    "JsonCodec",
    "MsgPackCodec",
    "PeerStatistics",
    "WebSocketClient",
    "WebSocketClosed",
    "WebSocketError",
    "WebSocketPeer",
    "WebSocketRejected",
    "WebSocketServer",
    "WebSocketServerStatistics",
    "event_message",
    "normalize_origin",
    "open_websocket_client",
    "serve_websockets",
]
