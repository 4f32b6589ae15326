"""Suite-wide configuration.

Tests that need a program outside Python (redis-server, Chromium, Node.js)
skip when it is missing, so a contributor can run the rest. Set
``TRIO_STREAM_REQUIRE_ALL=1`` (CI does) and every skip becomes a failure:
nothing is silently left out where everything is supposed to run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Generator

import pytest

REQUIRE_ALL_ENV = "TRIO_STREAM_REQUIRE_ALL"


def require_all() -> bool:
    """True when skips must fail (``TRIO_STREAM_REQUIRE_ALL`` set to a true value)."""
    return os.environ.get(REQUIRE_ALL_ENV, "").lower() in {"1", "true", "yes"}


def require_program(name: str) -> str:
    """Return the path of ``name`` on PATH, or skip the test (fail under require-all)."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not found on PATH")
    return path


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.skipped and require_all() and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under {REQUIRE_ALL_ENV}=1: {report.longrepr}"
    return report
