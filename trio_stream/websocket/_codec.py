"""Message codecs: how application objects become WebSocket frames and back.

JSON (text frames) is the default. MessagePack (binary frames) is optional: it
needs the ``msgpack`` extra (``pip install trio-stream[msgpack]``) and is
imported only when a :class:`MsgPackCodec` is created.
"""

from __future__ import annotations

import json
from typing import Any, Protocol, runtime_checkable

__all__ = ["Codec", "DecodeError", "JsonCodec", "MsgPackCodec"]


class DecodeError(ValueError):
    """A frame could not be decoded (malformed JSON / MessagePack, wrong frame type).

    Connections close with code 1007 (invalid payload data) when this happens.
    """


@runtime_checkable
class Codec(Protocol):
    """Turns objects into frames (``str`` → text frame, ``bytes`` → binary frame) and back.

    ``decode`` raises :class:`DecodeError` (or any :class:`ValueError`) for a
    frame it cannot read. Both methods are synchronous and must not block:
    they run on the connection's reader and writer paths.
    """

    name: str

    def encode(self, obj: Any) -> str | bytes:
        """Serialise ``obj`` into one frame."""

    def decode(self, frame: str | bytes) -> Any:
        """Deserialise one frame; raise :class:`DecodeError` if it is malformed."""


class JsonCodec:
    """JSON in text frames (compact separators, UTF-8, non-ASCII kept as is).

    Binary frames are accepted too when they hold UTF-8 JSON, which is what a
    browser sends from a ``Blob``. ``dumps_kwargs`` go to :func:`json.dumps`
    (``default=str``, say).
    """

    name = "json"

    def __init__(self, **dumps_kwargs: Any) -> None:
        dumps_kwargs.setdefault("separators", (",", ":"))
        dumps_kwargs.setdefault("ensure_ascii", False)
        self._dumps_kwargs = dumps_kwargs

    def encode(self, obj: Any) -> str:
        """Serialise ``obj`` as compact JSON text (``TypeError`` if it is not serialisable)."""
        return json.dumps(obj, **self._dumps_kwargs)

    def decode(self, frame: str | bytes) -> Any:
        """Parse one JSON frame; :class:`DecodeError` when it is not JSON."""
        try:
            return json.loads(frame)
        except (ValueError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError
            raise DecodeError("frame is not valid JSON") from exc
        except RecursionError:  # nested deeper than the stack: a hostile frame, not our bug
            raise DecodeError("frame is nested too deeply") from None


class MsgPackCodec:
    """MessagePack in binary frames (needs the optional ``msgpack`` package).

    Text frames are rejected with :class:`DecodeError`: a MessagePack peer
    never sends them, so one is a sign of a confused or hostile client.
    """

    name = "msgpack"

    def __init__(self) -> None:
        try:
            import msgpack
        except ImportError as exc:  # pragma: no cover - the test extra installs msgpack
            raise ImportError(
                "MsgPackCodec needs the msgpack package: pip install 'trio-stream[msgpack]'"
            ) from exc
        self._msgpack = msgpack

    def encode(self, obj: Any) -> bytes:
        """Serialise ``obj`` as MessagePack (``TypeError`` if it is not serialisable)."""
        data: bytes = self._msgpack.packb(obj, use_bin_type=True)
        return data

    def decode(self, frame: str | bytes) -> Any:
        """Parse one MessagePack frame; :class:`DecodeError` when malformed or a text frame."""
        if isinstance(frame, str):
            raise DecodeError("expected a binary MessagePack frame, got a text frame")
        try:
            return self._msgpack.unpackb(frame, raw=False, strict_map_key=False)
        except Exception as exc:  # msgpack raises several unrelated types for bad input
            raise DecodeError("frame is not valid MessagePack") from exc
