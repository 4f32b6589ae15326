"""``trio-stream tail URL``: a curl for Server-Sent Events that reconnects."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import TYPE_CHECKING, TextIO

import httpx
import trio

from ..protocol import Event, TrioStreamError
from ..sse._client import DEFAULT_MAX_RETRIES, EventSourceStatistics, open_event_source

if TYPE_CHECKING:
    from argparse import _SubParsersAction

__all__ = ["format_event", "register", "tail"]

EXIT_OK = 0
EXIT_FAILED = 1


def register(subparsers: _SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``tail`` subcommand to the ``trio-stream`` parser."""
    parser = subparsers.add_parser(
        "tail",
        help="print the events of an SSE stream as they arrive, reconnecting",
        description=(
            "Print the events of a Server-Sent Events stream as they arrive. Reconnects "
            "with Last-Event-ID when the stream drops; exits 0 when the server ends it "
            "for good (204), 1 with a one-line reason on a fatal error, 130 on Ctrl-C."
        ),
    )
    parser.add_argument("url", help="the event stream URL (http:// or https://)")
    parser.add_argument(
        "--last-event-id",
        metavar="ID",
        type=_event_id,
        help="resume after this event id (sent as Last-Event-ID)",
    )
    parser.add_argument(
        "--header",
        "-H",
        metavar="K:V",
        action="append",
        type=_header,
        default=[],
        help="an extra request header (repeatable)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='print one JSON object per event: {"id": ..., "event": ..., "data": ...}',
    )
    parser.add_argument(
        "--max-retries",
        metavar="N",
        type=_non_negative,
        default=DEFAULT_MAX_RETRIES,
        help=f"failed attempts in a row before giving up (default {DEFAULT_MAX_RETRIES})",
    )
    parser.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="also print the library's log (each request, each reconnect and why)",
    )
    parser.set_defaults(run=_run)


def format_event(event: Event, *, as_json: bool = False) -> str:
    """The text ``tail`` prints for ``event``, final newline included.

    Plain: ``event:``, ``id:`` (when set) and one ``data:`` line per data
    line, then a blank line. JSON: one compact object on one line.
    """
    if as_json:
        record = {"id": event.id, "event": event.event, "data": event.data}
        return json.dumps(record, ensure_ascii=False) + "\n"
    lines = [f"event: {event.event or 'message'}"]
    if event.id:
        lines.append(f"id: {event.id}")
    lines.extend(f"data: {line}" for line in event.data.split("\n"))
    return "\n".join(lines) + "\n\n"


async def tail(
    url: str,
    *,
    out: TextIO,
    err: TextIO,
    last_event_id: str | None = None,
    headers: dict[str, str] | None = None,
    as_json: bool = False,
    max_retries: int | None = DEFAULT_MAX_RETRIES,
) -> int:
    """Print the events of ``url`` to ``out`` until the stream ends; return the exit status.

    Reconnection notices and the fatal error (one line each) go to ``err``.
    Writes to ``out`` block the stream on purpose: a full pipe stops the
    reads, as ``curl`` would. Cancellation stops it at once.
    """

    def reconnecting(stats: EventSourceStatistics) -> None:
        reason = _reason(stats.last_error) if stats.last_error is not None else "stream ended"
        delay = stats.last_delay if stats.last_delay is not None else 0.0
        err.write(f"trio-stream tail: {reason}; reconnecting in {delay:.1f} s\n")
        err.flush()

    await trio.lowlevel.checkpoint()
    try:
        async with open_event_source(
            url,
            headers=headers,
            last_event_id=last_event_id,
            max_retries=max_retries,
            on_reconnect=reconnecting,
        ) as source:
            async for event in source:
                out.write(format_event(event, as_json=as_json))
                out.flush()
    except (TrioStreamError, httpx.HTTPError, httpx.InvalidURL) as exc:
        err.write(f"trio-stream tail: error: {_reason(exc)}\n")
        err.flush()
        return EXIT_FAILED
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    # tail reports in its own words on stderr; the library's log lines would
    # repeat them (Python prints warnings when logging is not configured).
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.CRITICAL,
        format="%(name)s: %(message)s",
    )
    try:
        return trio.run(
            lambda: tail(
                args.url,
                out=sys.stdout,
                err=sys.stderr,
                last_event_id=args.last_event_id,
                headers=dict(args.header),
                as_json=args.json,
                max_retries=args.max_retries,
            )
        )
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python's
        # final flush of stdout from complaining about the pipe again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not name or any(c in text for c in "\r\n\0"):
        raise argparse.ArgumentTypeError(f"expected NAME:VALUE, got {text!r}")
    return name, value


def _event_id(text: str) -> str:
    if any(c in text for c in "\r\n\0"):
        raise argparse.ArgumentTypeError("an event id may not contain CR, LF or NUL")
    return text


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value
