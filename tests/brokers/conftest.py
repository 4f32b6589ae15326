"""Fixtures for the broker tests: real ``redis-server`` processes (skipped when absent).

``redis_server`` is a plain server on a free port with persistence off;
``redis_server.restart(keep_data=...)`` / ``await redis_server.astop()`` /
``await redis_server.astart()`` simulate outages on the same port.
``auth_redis_server`` requires a password, ``tls_redis_server`` speaks only TLS
(certificates from trustme), ``unix_redis_server`` also listens on a Unix socket.
Every process is stopped by its pid at teardown.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.brokers._redis_server import RedisServer, RedisTLSFiles
from tests.conftest import require_program


def _running(server: RedisServer) -> Iterator[RedisServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server (no password, no TLS) for one test."""
    program = require_program("redis-server")
    yield from _running(RedisServer(program, tmp_path))


@pytest.fixture
def auth_redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server that requires the password ``s3cret`` (``url`` carries it)."""
    program = require_program("redis-server")
    yield from _running(RedisServer(program, tmp_path, password="s3cret"))


@pytest.fixture
def unix_redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server that also listens on a Unix socket (``url`` is the ``unix://`` one)."""
    program = require_program("redis-server")
    yield from _running(RedisServer(program, tmp_path, unix_socket=True))


@pytest.fixture(scope="session")
def redis_ca() -> trustme.CA:
    """A throwaway certificate authority for the TLS server."""
    return trustme.CA()


@pytest.fixture
def tls_redis_server(tmp_path: Path, redis_ca: trustme.CA) -> Iterator[RedisServer]:
    """A TLS-only redis-server whose certificate is for 127.0.0.1, signed by ``redis_ca``."""
    program = require_program("redis-server")
    cert = redis_ca.issue_cert("127.0.0.1", "localhost")
    files = RedisTLSFiles(tmp_path / "server.pem", tmp_path / "server.key", tmp_path / "ca.pem")
    cert.cert_chain_pems[0].write_to_path(str(files.cert_file))
    cert.private_key_pem.write_to_path(str(files.key_file))
    redis_ca.cert_pem.write_to_path(str(files.ca_file))
    yield from _running(RedisServer(program, tmp_path, tls=files))
