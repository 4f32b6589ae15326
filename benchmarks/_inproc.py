"""Runs one of the other benchmark modules (decoder, fan-out, compression, LLM relay, Redis).

``python -m benchmarks._inproc NAME [--quick]`` imports ``benchmarks.NAME``,
calls its ``run(...) -> dict`` and prints the dict as one JSON line. It
passes ``quick=`` if ``run`` takes it, else the sizes in ``QUICK_KWARGS`` or
``FULL_KWARGS`` that ``run`` accepts: the full sizes keep ``make bench``
within its time budget (each about 10-25 s on an idle 2-core machine). The
harness runs it in a subprocess with a deadline, so a slow or broken module
cannot stall the run.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import sys
from typing import Any

#: The modules, in the order they run.
MODULES = ("decoder", "fanout", "compression", "llm", "redis")
#: Single-process benchmarks, pinned to the server core; the others start
#: processes of their own and place them themselves.
PINNED = frozenset({"decoder", "fanout", "compression"})

#: Sizes per module and mode; only the parameters ``run`` has are passed.
QUICK_KWARGS: dict[str, dict[str, Any]] = {
    "decoder": {"size_mb": 1, "repeat": 1},
    "fanout": {"subscribers": 50, "events": 50, "repeats": 1},
    "llm": {"runs": 5, "ttft_runs": 5, "tokens": 100},
    "redis": {"subscribers": 10, "events": 20},
}
FULL_KWARGS: dict[str, dict[str, Any]] = {
    "decoder": {"size_mb": 20, "repeat": 3},
    "fanout": {"subscribers": 1000, "events": 200, "repeats": 3},
    "llm": {"runs": 100, "ttft_runs": 100, "tokens": 2000},
    "redis": {},  # its defaults: 1,000 subscribers in 2 processes, 2,000 events at 500/s
}


def main() -> None:
    """Run one module's ``run()`` and print its result as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name", choices=MODULES)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    module = importlib.import_module(f"benchmarks.{args.name}")
    run = module.run
    parameters = inspect.signature(run).parameters
    kwargs: dict[str, Any] = {}
    if "quick" in parameters:
        kwargs["quick"] = args.quick
    else:
        sizes = (QUICK_KWARGS if args.quick else FULL_KWARGS).get(args.name, {})
        kwargs = {key: value for key, value in sizes.items() if key in parameters}
    result = run(**kwargs)
    sys.stdout.write(json.dumps(result, default=str) + "\n")


if __name__ == "__main__":
    main()
