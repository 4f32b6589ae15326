"""`open_sse_reader`: read the events of an httpx streaming response, a few at a time."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from types import TracebackType

import httpx
import trio

from ..protocol import Event, SSEDecoder

__all__ = ["SSEReader", "open_sse_reader"]


class SSEReader:
    """Decoded Server-Sent Events of a streaming httpx response (see :func:`open_sse_reader`).

    :meth:`events` returns exactly ``count`` events, reading only as much of
    the body as needed (extra ones wait for the next call); ``chunks`` keeps
    every body chunk as received (e.g. to check that a backlog arrived in one
    write); ``comments`` counts comment lines (keepalives); ``ended`` turns
    True once the body ended. Reads happen in the caller's task, at its pace.
    """

    def __init__(self, response: httpx.Response, *, raw: bool = False) -> None:
        self._body: AsyncIterator[bytes] = response.aiter_raw() if raw else response.aiter_bytes()
        self._decoder = SSEDecoder()
        self._ready: deque[Event] = deque()
        self.chunks: list[bytes] = []
        self.comments = 0
        self.ended = False

    async def _read_chunk(self) -> bool:
        await trio.lowlevel.checkpoint()
        if self.ended:
            return False
        try:
            chunk = await anext(self._body)
        except StopAsyncIteration:
            self.ended = True
            return False
        except BaseException:
            self.ended = True  # an exception out of the generator finished it
            raise
        self.chunks.append(chunk)
        self.comments += sum(1 for line in chunk.splitlines() if line.startswith(b":"))
        self._ready.extend(self._decoder.feed(chunk))
        return True

    async def events(self, count: int) -> list[Event]:
        """The next ``count`` events; :class:`trio.EndOfChannel` if the body ends first."""
        await trio.lowlevel.checkpoint()
        while len(self._ready) < count:
            if not await self._read_chunk():
                raise trio.EndOfChannel(f"the stream ended after {len(self._ready)} events")
        return [self._ready.popleft() for _ in range(count)]

    async def chunk(self) -> bytes:
        """The next body chunk as received (its events are decoded and queued too)."""
        if not await self._read_chunk():
            raise trio.EndOfChannel("the stream ended")
        return self.chunks[-1]

    async def rest(self) -> list[Event]:
        """Every remaining event, reading until the body ends."""
        while await self._read_chunk():
            pass
        events = list(self._ready)
        self._ready.clear()
        return events

    async def aclose(self) -> None:
        """Stop reading: finish httpx's body iterators without leaking them.

        httpx's body iterator is a chain of async generators; closing the outer
        one (what ``break`` or ``aclose`` do) leaves the inner ones suspended.
        A read run in an already-cancelled scope raises ``Cancelled`` inside
        the innermost one, which unwinds and finishes the whole chain.
        """
        await trio.lowlevel.checkpoint()
        while not self.ended:
            with trio.CancelScope() as scope:  # noqa: ASYNC912  cancelled on purpose, at once
                scope.cancel()
                try:
                    await anext(self._body)
                except (StopAsyncIteration, httpx.HTTPError):
                    self.ended = True
            if scope.cancelled_caught:
                self.ended = True

    async def __aenter__(self) -> SSEReader:
        await trio.lowlevel.checkpoint()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def open_sse_reader(response: httpx.Response, *, raw: bool = False) -> SSEReader:
    """``async with open_sse_reader(response) as reader:`` reads ``response`` as SSE.

    ``response`` comes from ``client.stream(...)``. ``raw=True`` keeps the
    body's ``Content-Encoding`` (no decompression). Leaving the block stops
    reading cleanly (see :meth:`SSEReader.aclose`).
    """
    return SSEReader(response, raw=raw)
