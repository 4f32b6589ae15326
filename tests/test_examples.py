"""Every file in examples/ runs here: an example that does not run teaches nothing.

To add an example: one line in ``EXPECTED_OUTPUT`` (its file name and a line
it prints on success). An example that serves something takes ``--port`` and,
with ``--port 0 --self-test``, runs its own client against itself, prints
that line and exits 0: list it in ``SERVING`` too. One that needs a program
outside Python goes in ``NEEDS_PROGRAMS`` (the test skips without it, and
fails under ``TRIO_STREAM_REQUIRE_ALL=1``). Pure examples just run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_program

EXAMPLES = Path(__file__).parent.parent / "examples"

# A safety bound for one example run (they take a few seconds), not a timing check.
RUN_DEADLINE = 60

EXPECTED_OUTPUT = {
    "sans_io_events.py": "rejected: Event type may not contain CR or LF",
    "quickstart.py": "self-test ok: {",
    "sse_hub_endpoint.py": "self-test ok: 3 ticks received, resumed after ",
    "sse_client_resume.py": "self-test ok: 40 events in order over ",
    "websocket_chat.py": "self-test ok: chat delivered to 2 members",
    "llm_relay_cancel.py": "self-test ok: the stopped answer was cancelled upstream",
    "job_progress.py": "self-test ok: 2 jobs followed from their first event to done",
    "fanout_overflow.py": "fan-out ok: only BLOCK slowed the publisher",
    "redis_scale_out.py": "self-test ok: A's events arrived through B; resumed on A",
    "safe_async_generators.py": "safe generators ok: every finally ran",
    "export_sqlite_ndjson.py": "50000 rows exported; an early stop closed the cursor",
    "export_large_file.py": "16777216 bytes, sha256 match; an early stop closed the file",
}

SERVING = {
    "quickstart.py",
    "export_sqlite_ndjson.py",
    "export_large_file.py",
    "sse_hub_endpoint.py",
    "sse_client_resume.py",
    "websocket_chat.py",
    "llm_relay_cancel.py",
    "job_progress.py",
    "redis_scale_out.py",
}

NEEDS_PROGRAMS = {
    "redis_scale_out.py": ("redis-server",),
}


def run_example(
    name: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=RUN_DEADLINE,
        check=False,
        env=env,
    )


def test_every_example_is_listed() -> None:
    assert {p.name for p in EXAMPLES.glob("*.py")} == set(EXPECTED_OUTPUT)
    assert set(SERVING) <= set(EXPECTED_OUTPUT)
    assert set(NEEDS_PROGRAMS) <= set(EXPECTED_OUTPUT)


@pytest.mark.parametrize("name", sorted(EXPECTED_OUTPUT))
def test_example_runs(name: str) -> None:
    for program in NEEDS_PROGRAMS.get(name, ()):
        require_program(program)
    result = run_example(name, *(["--port", "0", "--self-test"] if name in SERVING else []))
    assert result.returncode == 0, result.stderr
    assert EXPECTED_OUTPUT[name] in result.stdout, result.stdout


def test_redis_example_explains_a_missing_redis_server() -> None:
    # No redis-server on PATH and no --redis: a clear message and exit status 3.
    env = {**os.environ, "PATH": ""}
    result = run_example("redis_scale_out.py", "--port", "0", "--self-test", env=env)
    assert result.returncode == 3, result.stderr
    assert "redis-server is not on PATH" in result.stderr
