"""Every file in examples/ runs here: an example that does not run teaches nothing.

Examples that serve something take ``--port 0`` and exit by themselves when
given ``--self-test``; pure ones just run to completion.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_every_example_is_listed() -> None:
    assert {p.name for p in EXAMPLES.glob("*.py")} == set(EXPECTED_OUTPUT)


EXPECTED_OUTPUT = {
    "sans_io_events.py": "rejected: Event type may not contain CR or LF",
}


@pytest.mark.parametrize("name", sorted(EXPECTED_OUTPUT))
def test_example_runs(name: str) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert EXPECTED_OUTPUT[name] in result.stdout
