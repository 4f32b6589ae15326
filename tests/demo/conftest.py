"""Fixtures for the demo tests: one Chromium for the session, a screenshot folder, Redis."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.brokers._redis_server import RedisServer
from tests.conftest import require_program
from tests.demo._browser import BrowserThread

SCREENSHOTS_ENV = "TRIO_STREAM_SCREENSHOTS"


@pytest.fixture(scope="session")
def browser() -> Iterator[BrowserThread]:
    """Debian's Chromium, launched once, driven through Playwright (skips without it)."""
    executable = require_program("chromium")
    thread = BrowserThread(executable)
    thread.start()
    try:
        yield thread
    finally:
        thread.stop()


@pytest.fixture(scope="session")
def screenshots(pytestconfig: pytest.Config) -> Path:
    """Where the browser tests save their screenshots: ``test-output/screenshots/``
    under the repository (gitignored), or ``$TRIO_STREAM_SCREENSHOTS``."""
    default = pytestconfig.rootpath / "test-output" / "screenshots"
    folder = Path(os.environ.get(SCREENSHOTS_ENV) or default)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server for one test (``.url``; ``astop``/``astart`` for an outage)."""
    server = RedisServer(require_program("redis-server"), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
