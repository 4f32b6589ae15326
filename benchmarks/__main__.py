"""``python -m benchmarks`` (``make bench``): trio_stream side by side with its peers.

See benchmarks/README.md for the method and benchmarks/CONTRACT.md for what
every server implements. Exit status: 0 when every run kept the contract,
1 when a run broke it (or, in ``--quick`` mode, did not finish, or another
benchmark module failed), 2 when ``--strict`` and a server is not available.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import signal
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

from ._harness import (
    Pinning,
    check_available,
    raise_fd_limit,
    run_inproc,
    run_one,
    stop_all,
)
from ._inproc import MODULES, PINNED
from ._report import is_broken, machine, render, update_readme, versions
from ._scenarios import FULL, QUICK, SERVERS, Scenario, ServerSpec
from ._steal import NOISY_SHARE, RETRIES, run_until_quiet

HERE = Path(__file__).resolve().parent
_INPROC_DEADLINE = {True: 60.0, False: 180.0}


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    names = [s.name for s in SERVERS]
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny counts, one repetition")
    parser.add_argument("--scenarios", default="ABCD", help="which scenarios, e.g. AD")
    parser.add_argument(
        "--servers", default=",".join(names), help="comma-separated, from: " + ", ".join(names)
    )
    parser.add_argument("--reps", type=int, help="repetitions (default 3, 1 with --quick)")
    parser.add_argument("--strict", action="store_true", help="fail if a server is unavailable")
    parser.add_argument(
        "--no-inproc",
        action="store_true",
        help="skip the decoder, fanout, compression, llm, redis modules",
    )
    parser.add_argument(
        "--readme",
        choices=["auto", "yes", "no"],
        default="auto",
        help="write the table into benchmarks/README.md (auto: not with --quick)",
    )
    parser.add_argument("--results-dir", type=Path, default=HERE / "results")
    parser.add_argument(
        "--jobs", type=int, help="runs at once (default 1; 2 with --quick, which only checks)"
    )
    parser.add_argument(
        "--retries",
        type=int,
        help=f"runs again of a repetition during which the hypervisor took more than "
        f"{NOISY_SHARE:.0%} of a core (default {RETRIES}, 0 with --quick)",
    )
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    args = parser.parse_args(argv)
    unknown = set(args.servers.split(",")) - set(names)
    if unknown:
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}")
    if set(args.scenarios) - set("ABCD"):
        parser.error("scenarios are letters among ABCD")
    return args


def _log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _describe(run: dict[str, Any]) -> str:
    if run.get("error"):
        return f"ERROR {run['error']}"
    parts = []
    if "events_per_s" in run and run["scenario"] != "C":
        parts.append(f"{run['events_per_s']:,.0f} events/s")
    if "latency_p99_ms" in run:
        parts.append(f"p50 {run['latency_p50_ms']:.2f} ms p99 {run['latency_p99_ms']:.2f} ms")
    if "rss_per_connection" in run:
        parts.append(f"{run['rss_per_connection'] / 1024:.1f} KiB/conn")
    if "server_cpu_share" in run:
        parts.append(f"cpu srv {run['server_cpu_share']:.0%} cli {run['client_cpu_share']:.0%}")
    if run.get("steal_share") is not None:
        tries = f" after {run['attempts']} attempts" if run.get("attempts", 1) > 1 else ""
        parts.append(f"host took {run['steal_share']:.1%}{tries}")
    if not run.get("complete"):
        parts.append(f"INCOMPLETE {run.get('delivered', 0)}/{run.get('expected', '?')}")
    if run.get("order_errors") or run.get("failures"):
        parts.append(f"order errors {run.get('order_errors')} failures {run.get('failures')}")
    return ", ".join(parts)


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _pinning_text(pinning: Pinning, jobs: int) -> str:
    if jobs > 1:
        return f"none: {jobs} runs at once (--jobs), so the figures mean nothing"
    if pinning.server_cpu is None:
        return "none (taskset unavailable, or fewer than 2 cores): figures are less reliable"
    return f"server on core {pinning.server_cpu}, client on core {pinning.client_cpu}"


def main(argv: list[str] | None = None) -> int:
    """Run the selected scenarios; write JSON results and (optionally) the README table."""
    args = _parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so that no server process is left behind.
    signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()
    raise_fd_limit()
    # --jobs > 1 (the --quick default) runs several at once, unpinned so the
    # scheduler can spread them: fine for checking that everything works,
    # meaningless for the figures.
    jobs = args.jobs or (2 if args.quick else 1)
    pinning = (
        Pinning.detect(args.server_cpu, args.client_cpu) if jobs == 1 else Pinning(None, None)
    )
    scenarios: dict[str, Scenario] = {
        key: (QUICK if args.quick else FULL)[key] for key in "ABCD" if key in args.scenarios
    }
    reps = args.reps or (1 if args.quick else 3)
    selected = [s for s in SERVERS if s.name in args.servers.split(",")]
    unavailable = {s.name: why for s in selected if (why := check_available(s))}
    for name, why in unavailable.items():
        _log(f"not available: {name}: {why}")
    if unavailable and args.strict:
        return 2
    available = [s for s in selected if s.name not in unavailable]

    plan = []
    for scenario in scenarios.values():
        for rep in range(reps):
            # Round-robin, starting one server later each repetition, so that
            # noise and ordering effects fall on every server alike.
            shift = rep % len(available) if available else 0
            plan += [(scenario, rep, server) for server in available[shift:] + available[:shift]]

    retries = args.retries if args.retries is not None else (0 if args.quick else RETRIES)
    cores = (pinning.server_cpu, pinning.client_cpu)

    def one(step: tuple[Scenario, int, ServerSpec]) -> dict[str, Any]:
        scenario, rep, server = step
        run = run_until_quiet(
            partial(run_one, server, scenario, pinning),
            # Idle connections (C) measure memory, which a busy host does not change.
            retries=retries if scenario.mode == "stream" else 0,
            cores=cores,
            broken=is_broken,
        )
        run["rep"] = rep
        return run

    def module(name: str) -> dict[str, Any]:
        cpu = pinning.server_cpu if name in PINNED else None
        return run_inproc(name, args.quick, cpu, _INPROC_DEADLINE[args.quick])

    modules = [] if args.no_inproc else list(MODULES)
    runs: list[dict[str, Any]] = []
    inproc: dict[str, dict[str, Any]] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        # Submitted in order (the modules last), so that with one worker the
        # order is exactly the plan's, and with more no worker idles.
        run_futures = [pool.submit(one, step) for step in plan]
        module_futures = [pool.submit(module, name) for name in modules]
        try:
            for (scenario, rep, server), future in zip(plan, run_futures, strict=True):
                run = future.result()
                runs.append(run)
                _log(f"[{scenario.key} {rep + 1}/{reps}] {server.name}: {_describe(run)} "
                     f"({run['seconds']:.1f} s)")  # fmt: skip
            for name, module_future in zip(modules, module_futures, strict=True):
                inproc[name] = module_future.result()
        except BaseException:
            # Ctrl-C or SIGTERM: drop what has not started, kill what runs.
            pool.shutdown(wait=False, cancel_futures=True)
            stop_all()
            raise
    for name, result in inproc.items():
        _log(f"[{name}] {json.dumps(result)[:200]}")

    elapsed = time.monotonic() - started
    meta: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "elapsed_s": elapsed,
        "quick": args.quick,
        "reps": reps,
        "machine": machine(_pinning_text(pinning, jobs)),
        "versions": versions(),
    }
    section = render(
        runs,
        scenarios=scenarios,
        servers=selected,
        unavailable=unavailable,
        inproc=inproc,
        meta=meta,
    )
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.results_dir / f"{'quick-' if args.quick else ''}{stamp}.json"
    payload = {"meta": meta, "unavailable": unavailable, "runs": runs, "inproc": inproc}
    out.write_text(json.dumps(payload, indent=1))
    if args.readme == "yes" or (args.readme == "auto" and not args.quick):
        update_readme(HERE / "README.md", section)
    sys.stdout.write(section)
    _log(f"raw results: {out}; total {elapsed:.0f} s")

    broken = [r for r in runs if is_broken(r)]
    unfinished = [r for r in runs if not r.get("complete")] if args.quick else []
    failed_modules = [name for name, r in inproc.items() if "error" in r] if args.quick else []
    return 1 if broken or unfinished or failed_modules else 0


if __name__ == "__main__":
    sys.exit(main())
