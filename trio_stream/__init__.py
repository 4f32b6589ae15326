"""trio_stream: cancellation-safe real-time streaming for Trio.

Server-Sent Events on Hypercorn, WebSockets on trio-websocket, an SSE client
on httpx, LLM token relays and a Redis Streams backplane, with backpressure
modelled end to end by bounded channels.
"""

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from .core import BoundedQueue as BoundedQueue
from .core import Broker as Broker
from .core import BrokerError as BrokerError
from .core import BrokerUnavailableError as BrokerUnavailableError
from .core import History as History
from .core import Hub as Hub
from .core import HubClosedError as HubClosedError
from .core import HubStatistics as HubStatistics
from .core import InvalidTopicError as InvalidTopicError
from .core import MemoryBroker as MemoryBroker
from .core import Overflow as Overflow
from .core import QueueStatistics as QueueStatistics
from .core import ReconnectError as ReconnectError
from .core import RetryBudgetExhausted as RetryBudgetExhausted
from .core import SubscriberDisconnected as SubscriberDisconnected
from .core import Subscription as Subscription
from .core import heartbeat as heartbeat
from .core import open_hub as open_hub
from .core import reconnect_loop as reconnect_loop
from .core import validate_topic as validate_topic
from .llm import ChatRelay as ChatRelay
from .llm import GenerationResult as GenerationResult
from .llm import LocalTokenSource as LocalTokenSource
from .llm import OpenAIUpstream as OpenAIUpstream
from .llm import UpstreamError as UpstreamError
from .protocol import Backoff as Backoff
from .protocol import CloseCode as CloseCode
from .protocol import Event as Event
from .protocol import SSEDecodeError as SSEDecodeError
from .protocol import SSEDecoder as SSEDecoder
from .protocol import TrioStreamError as TrioStreamError
from .protocol import encode_comment as encode_comment
from .protocol import encode_preamble as encode_preamble
from .protocol import should_reconnect as should_reconnect
from .sse import CORS as CORS
from .sse import Authenticated as Authenticated
from .sse import ConnectionLimits as ConnectionLimits
from .sse import EventSource as EventSource
from .sse import EventSourceStatistics as EventSourceStatistics
from .sse import EventStream as EventStream
from .sse import ExportStatistics as ExportStatistics
from .sse import RateLimit as RateLimit
from .sse import Route as Route
from .sse import Router as Router
from .sse import ServeError as ServeError
from .sse import SSEClientError as SSEClientError
from .sse import SSEResponseError as SSEResponseError
from .sse import SSERetriesExhaustedError as SSERetriesExhaustedError
from .sse import StreamingResponse as StreamingResponse
from .sse import TopicsEventId as TopicsEventId
from .sse import csv_response as csv_response
from .sse import file_response as file_response
from .sse import hub_endpoint as hub_endpoint
from .sse import hub_topics_endpoint as hub_topics_endpoint
from .sse import ndjson_response as ndjson_response
from .sse import open_event_source as open_event_source
from .sse import serve as serve
from .sse import sse_response as sse_response
from .websocket import ClientSession as ClientSession
from .websocket import HandshakeRejected as HandshakeRejected
from .websocket import HandshakeRequest as HandshakeRequest
from .websocket import JsonCodec as JsonCodec
from .websocket import MsgPackCodec as MsgPackCodec
from .websocket import WebSocketClient as WebSocketClient
from .websocket import WebSocketClosed as WebSocketClosed
from .websocket import WebSocketError as WebSocketError
from .websocket import WebSocketPeer as WebSocketPeer
from .websocket import WebSocketRejected as WebSocketRejected
from .websocket import WebSocketServer as WebSocketServer
from .websocket import open_websocket_client as open_websocket_client
from .websocket import serve_websockets as serve_websockets

if _TYPE_CHECKING:
    from .brokers import RedisBroker as RedisBroker

__version__ = "0.1.0.dev0"

# The Redis backplane imports coredis, which costs more than the rest of the
# library together; load it on first use so `import trio_stream` stays fast.
_LAZY = {"RedisBroker": "brokers"}


def __getattr__(name: str) -> _Any:
    if name in _LAZY:
        value = getattr(_importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [  # noqa: RUF022  plain sorted(), as tests/test_exported_members.py checks
    "Authenticated",
    "Backoff",
    "BoundedQueue",
    "Broker",
    "BrokerError",
    "BrokerUnavailableError",
    "CORS",
    "ChatRelay",
    "ClientSession",
    "CloseCode",
    "ConnectionLimits",
    "Event",
    "EventSource",
    "EventSourceStatistics",
    "EventStream",
    "ExportStatistics",
    "GenerationResult",
    "HandshakeRejected",
    "HandshakeRequest",
    "History",
    "Hub",
    "HubClosedError",
    "HubStatistics",
    "InvalidTopicError",
    "JsonCodec",
    "LocalTokenSource",
    "MemoryBroker",
    "MsgPackCodec",
    "OpenAIUpstream",
    "Overflow",
    "QueueStatistics",
    "RateLimit",
    "ReconnectError",
    "RedisBroker",
    "RetryBudgetExhausted",
    "Route",
    "Router",
    "SSEClientError",
    "SSEDecodeError",
    "SSEDecoder",
    "SSEResponseError",
    "SSERetriesExhaustedError",
    "ServeError",
    "StreamingResponse",
    "SubscriberDisconnected",
    "Subscription",
    "TopicsEventId",
    "TrioStreamError",
    "UpstreamError",
    "WebSocketClient",
    "WebSocketClosed",
    "WebSocketError",
    "WebSocketPeer",
    "WebSocketRejected",
    "WebSocketServer",
    "csv_response",
    "encode_comment",
    "encode_preamble",
    "file_response",
    "heartbeat",
    "hub_endpoint",
    "hub_topics_endpoint",
    "ndjson_response",
    "open_event_source",
    "open_hub",
    "open_websocket_client",
    "reconnect_loop",
    "serve",
    "serve_websockets",
    "should_reconnect",
    "sse_response",
    "validate_topic",
]
