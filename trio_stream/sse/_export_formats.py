"""Ready-made exports: NDJSON rows, CSV rows, a file from disk."""

from __future__ import annotations

import csv
import io
import json
import logging
import mimetypes
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import trio

from ._asgi import Scope
from ._export import ExportSource, StreamingResponse
from ._feeds import Feed
from ._request import RequestRejected

__all__ = ["csv_response", "file_response", "ndjson_response"]

logger = logging.getLogger("trio_stream.sse")

# How long closing a file may take once the response ended (shielded).
_CLOSE_GRACE = 5.0


def _ndjson_encoder(default: Callable[[Any], Any] | None) -> Callable[[Any], bytes]:
    # allow_nan=False: NaN and Infinity are not JSON; such a row fails the
    # export loudly instead of producing a line a strict parser rejects.
    dumps = json.JSONEncoder(
        separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=default
    ).encode

    def encode(row: Any) -> bytes:
        return (dumps(row) + "\n").encode("utf-8")

    return encode


def ndjson_response(
    source: ExportSource,
    *,
    default: Callable[[Any], Any] | None = None,
    capacity: int = 512,
    **options: Any,
) -> StreamingResponse:
    """Stream ``source``'s items as NDJSON (``application/x-ndjson``): one JSON value per line.

    Each item is serialised compactly in the producer's task (``default``
    as for :func:`json.dumps`); an item that is not JSON (NaN included)
    fails the export, which is then cut (see :class:`StreamingResponse`).
    ``capacity`` counts rows (default 512: rows are small, so writes carry
    many of them). ``options`` are :class:`StreamingResponse`'s.
    """
    return StreamingResponse(
        source,
        media_type="application/x-ndjson",
        encode=_ndjson_encoder(default),
        capacity=capacity,
        **options,
    )


class _CSVEncoder:
    """One ``csv.writer`` per response, writing into a reused buffer."""

    def __init__(self, dialect: str | csv.Dialect | type[csv.Dialect]) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, dialect=dialect)

    def __call__(self, row: Sequence[Any]) -> bytes:
        self._writer.writerow(row)
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text.encode("utf-8")


def csv_response(
    source: ExportSource,
    *,
    header: Sequence[str] | None = None,
    dialect: str | csv.Dialect | type[csv.Dialect] = "excel",
    capacity: int = 512,
    **options: Any,
) -> StreamingResponse:
    """Stream ``source``'s rows (sequences of fields) as CSV (``text/csv; charset=utf-8``).

    ``header`` is written first; ``dialect`` as for :func:`csv.writer`
    (default ``"excel"``: RFC 4180, CRLF line ends). Rows are formatted in
    the producer's task. ``capacity`` counts rows (default 512).
    ``options`` are :class:`StreamingResponse`'s.
    """
    encode = _CSVEncoder(dialect)
    preamble = _CSVEncoder(dialect)(header) if header is not None else b""
    return StreamingResponse(
        source,
        media_type="text/csv; charset=utf-8",
        encode=encode,
        capacity=capacity,
        preamble=preamble,
        **options,
    )


class _FileResponse(StreamingResponse):
    """A file from disk: opened when the request arrives, closed whatever happens."""

    def __init__(self, path: str | os.PathLike[str], chunk_size: int, **options: Any) -> None:
        super().__init__(self._chunks(), **options)
        self._path = path
        self._chunk_size = chunk_size
        self._reader: Any = None  # trio's async file wrapper, while the request runs

    def _open_feed(self, scope: Scope) -> AbstractAsyncContextManager[Feed[Any]]:
        return self._opened_file(scope)

    @asynccontextmanager
    async def _opened_file(self, scope: Scope) -> AsyncIterator[Feed[Any]]:
        try:
            file = await trio.open_file(self._path, "rb")
        except FileNotFoundError:
            raise RequestRejected(404, "not found") from None
        except OSError:
            logger.exception("cannot open the file to stream")
            raise RequestRejected(500, "internal error") from None
        try:
            if self._content_length is None:
                # fstat on an open descriptor reads the inode: no disk wait.
                self._content_length = os.fstat(file.fileno()).st_size
            self._reader = file
            async with super()._open_feed(scope) as feed:
                yield feed
        finally:
            self._reader = None
            with trio.move_on_after(_CLOSE_GRACE) as scope_:
                scope_.shield = True
                await file.aclose()

    async def _chunks(self) -> AsyncIterator[bytes]:  # noqa: ASYNC900  the response acloses it
        # Pulled only when the window has room: the file is never read ahead of it.
        while True:
            data = await self._reader.read(self._chunk_size)
            if not data:
                return
            yield data


def file_response(
    path: str | os.PathLike[str],
    *,
    media_type: str | None = None,
    chunk_size: int = 64 * 1024,
    capacity: int = 16,
    **options: Any,
) -> StreamingResponse:
    """Stream the file at ``path`` in ``chunk_size`` reads (default 64 KiB).

    The file is opened when the request arrives (missing: 404; unreadable:
    500, logged) and closed when the response ends, however it ends (a
    shielded, bounded close). ``content-length`` is its size when opened
    (a file that changes meanwhile cuts the response). ``media_type``
    defaults to a guess from the name. ``capacity`` counts chunks (default
    16: at most 1 MiB in flight with the default chunk size). Pass
    ``filename=`` to make browsers save it. ``options`` are
    :class:`StreamingResponse`'s.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    if media_type is None:
        media_type = mimetypes.guess_type(os.fspath(path))[0] or "application/octet-stream"
    return _FileResponse(path, chunk_size, media_type=media_type, capacity=capacity, **options)
