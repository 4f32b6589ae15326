"""The ``trio-stream`` command line (also ``python -m trio_stream``).

Each subcommand lives in its own module with a ``register(subparsers)``
function that adds its parser and sets ``run`` (``args -> exit status``) as
a default; :data:`COMMAND_MODULES` lists them in help order.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Sequence

__all__ = ["COMMAND_MODULES", "build_parser", "main"]

COMMAND_MODULES: tuple[str, ...] = ("trio_stream.cli._demo", "trio_stream.cli._tail")
"""Modules that each register one subcommand."""

EXIT_INTERRUPTED = 130  # the shell's convention for a process ended by SIGINT


def build_parser() -> argparse.ArgumentParser:
    """The ``trio-stream`` argument parser, with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="trio-stream",
        description="Cancellation-safe real-time streaming for Trio.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    0 on success, 1 on a failure the command reports in one line on stderr,
    2 on a usage error, 130 after Ctrl-C (quietly, no traceback).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse already printed
        return exc.code if isinstance(exc.code, int) else 2
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
