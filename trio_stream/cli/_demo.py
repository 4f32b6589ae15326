"""``trio-stream demo``: run the demo server until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
from typing import TYPE_CHECKING, TextIO

import trio

from ..core._groups import collapse_group
from ..demo import DemoConfig, DemoServer, serve_demo
from ..protocol import TrioStreamError

if TYPE_CHECKING:
    from argparse import _SubParsersAction

__all__ = ["TOKEN_ENV", "UPSTREAM_KEY_ENV", "config_from", "register", "run_demo"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

TOKEN_ENV = "TRIO_STREAM_TOKEN"
"""Environment variable read when ``--token`` is not given (keeps it out of ``ps``)."""

UPSTREAM_KEY_ENV = "TRIO_STREAM_UPSTREAM_API_KEY"
"""Environment variable holding the ``--upstream`` server's API key, if it needs one."""


def register(subparsers: _SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo`` subcommand to the ``trio-stream`` parser."""
    parser = subparsers.add_parser(
        "demo",
        help="run the demo server (page, SSE, WebSockets, LLM relay, jobs, metrics)",
        description=(
            "Run the demo server: a page with a live ticker (SSE), chat (WebSocket), an "
            "LLM answer with a Stop button and job progress bars, plus the HTTP API. "
            "Prints its URLs; SIGINT or SIGTERM shut it down gracefully (exit 0)."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=_port, default=8000, help="HTTP port (default 8000; 0: any free port)"
    )
    parser.add_argument(
        "--ws-port",
        type=_port,
        default=8001,
        help="WebSocket port (default 8001; 0: any free port)",
    )
    parser.add_argument(
        "--redis", metavar="URL", help="share topics through Redis (redis://host:6379/0)"
    )
    parser.add_argument(
        "--upstream",
        metavar="URL",
        help="OpenAI-compatible base URL ending in /v1 (default: the local token source); "
        f"its API key, if any, from ${UPSTREAM_KEY_ENV}",
    )
    parser.add_argument("--model", help="model name sent upstream when a request has none")
    parser.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV),
        help=f"require this bearer token for every write (default ${TOKEN_ENV})",
    )
    parser.add_argument(
        "--ticker-interval",
        metavar="S",
        type=float,
        default=1.0,
        help="seconds between ticker events (default 1.0; 0 turns the ticker off)",
    )
    parser.add_argument(
        "--allow-origin",
        metavar="ORIGIN",
        action="append",
        default=[],
        help="another page origin allowed to open WebSockets (repeatable)",
    )
    parser.add_argument(
        "--cors-origin",
        metavar="ORIGIN",
        action="append",
        default=[],
        help="a page origin (https://host[:port]) allowed to read the SSE streams and call "
        "the API cross-origin (repeatable; default: none, no CORS headers)",
    )
    parser.add_argument(
        "--max-stream-lifetime",
        metavar="S",
        type=float,
        default=None,
        help="end each SSE stream cleanly after 80-100%% of S seconds; browsers resume "
        "from Last-Event-ID (default: off)",
    )
    parser.add_argument(
        "--max-sse-per-client",
        metavar="N",
        type=int,
        default=1024,
        help="open SSE streams allowed per client address; more get 429 (default 1024)",
    )
    parser.add_argument(
        "--publish-rate",
        metavar="R",
        type=float,
        default=50.0,
        help="publish requests per second per client address, bursts of 4x that; "
        "more get 429 (default 50)",
    )
    parser.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="log more (INFO level: refusals, reconnects, jobs)",
    )
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = config_from(args)
    except ValueError as exc:
        sys.stderr.write(f"trio-stream demo: error: {exc}\n")
        return EXIT_USAGE
    return trio.run(run_demo, config, sys.stdout, sys.stderr)


def config_from(args: argparse.Namespace) -> DemoConfig:
    """The :class:`DemoConfig` the parsed ``demo`` options ask for (``ValueError`` if bad)."""
    rate = args.publish_rate
    # Bursts of four seconds' worth; a bad rate is DemoConfig's to refuse.
    burst = max(1, round(rate * 4)) if math.isfinite(rate) and rate > 0 else 1
    return DemoConfig(
        host=args.host,
        port=args.port,
        ws_port=args.ws_port,
        redis=args.redis,
        upstream=args.upstream,
        model=args.model,
        upstream_api_key=os.environ.get(UPSTREAM_KEY_ENV) or None,
        token=args.token or None,
        ticker_interval=args.ticker_interval,
        allowed_origins=tuple(args.allow_origin),
        cors_origins=tuple(args.cors_origin),
        max_stream_lifetime=args.max_stream_lifetime,
        max_sse_per_client=args.max_sse_per_client,
        publish_rate=rate,
        publish_burst=burst,
    )


async def run_demo(config: DemoConfig, out: TextIO, err: TextIO) -> int:
    """Run the demo until SIGINT or SIGTERM; print its URLs to ``out``; return the status.

    0 after a signal (the shutdown is graceful and bounded), 1 when the demo
    could not start or failed (one line on ``err``). Must run in the main
    thread (it installs signal handlers).
    """
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        await trio.lowlevel.checkpoint()
        try:
            async with trio.open_nursery() as nursery:
                server: DemoServer = await nursery.start(serve_demo, config)
                _print_urls(server, out)
                async for signum in signals:
                    name = signal.Signals(signum).name
                    out.write(f"{name}: shutting down\n")
                    out.flush()
                    nursery.cancel_scope.cancel()
                    break
        except BaseExceptionGroup as group:
            failure = collapse_group(group)
            if not isinstance(failure, OSError | TrioStreamError):
                raise
            err.write(f"trio-stream demo: error: {_reason(failure)}\n")
            err.flush()
            return EXIT_FAILED
    return EXIT_OK


def _print_urls(server: DemoServer, out: TextIO) -> None:
    token = server.config.token
    out.write("trio-stream demo is running\n")
    for name, url in server.urls().items():
        if name == "page" and token is not None:
            url += "?token=YOUR_TOKEN"
        out.write(f"  {name:<8} {url}\n")
    out.write("Press Ctrl-C to stop.\n")
    out.flush()


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text!r}")
    return value
