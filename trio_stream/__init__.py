"""trio_stream: cancellation-safe real-time streaming for Trio.

Server-Sent Events on Hypercorn, WebSockets on trio-websocket, an SSE client
on httpx, LLM token relays and a Redis Streams backplane, with backpressure
modelled end to end by bounded channels.
"""

from .protocol import Backoff as Backoff
from .protocol import CloseCode as CloseCode
from .protocol import Event as Event
from .protocol import SSEDecodeError as SSEDecodeError
from .protocol import SSEDecoder as SSEDecoder
from .protocol import TrioStreamError as TrioStreamError
from .protocol import encode_comment as encode_comment
from .protocol import encode_preamble as encode_preamble
from .protocol import should_reconnect as should_reconnect

__version__ = "0.1.0.dev0"

__all__ = [
    "Backoff",
    "CloseCode",
    "Event",
    "SSEDecodeError",
    "SSEDecoder",
    "TrioStreamError",
    "encode_comment",
    "encode_preamble",
    "should_reconnect",
]
