"""open_test_server: a real Hypercorn with request and connection accounting; TLS helpers."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
import trio

from trio_stream.sse._asgi import Receive, Scope, Send, handle_lifespan, send_plain
from trio_stream.testing import issue_tls_certificate, open_test_server

pytest_plugins = ["pytester"]

SAFETY = 10  # seconds: a bound on each test, never a wait for something to happen


async def test_accounting_of_requests_and_connections() -> None:
    release = trio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await handle_lifespan(receive, send)
            return
        await release.wait()
        await send_plain(send, 200, "done")

    with trio.fail_after(SAFETY):
        # A short keep-alive: Hypercorn may notice a pooled connection's EOF
        # only when its keep-alive timer fires.
        async with open_test_server(app, keep_alive_timeout=0.2) as server:
            assert (server.requests_started, server.in_flight) == (0, 0)
            assert server.open_connections() == 0
            async with httpx.AsyncClient() as client, trio.open_nursery() as nursery:
                nursery.start_soon(client.get, server.url)
                nursery.start_soon(client.get, server.url)
                await server.wait_requests_started(2)
                assert server.in_flight == 2
                assert server.open_connections() == 2
                release.set()
                await server.wait_idle()
            await server.wait_connections_closed()
            assert server.requests_started == 2


async def test_errors_in_the_body_come_out_unwrapped() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await handle_lifespan(receive, send)

    with trio.fail_after(SAFETY), pytest.raises(KeyError):
        async with open_test_server(app):
            raise KeyError("mine")


def test_issued_certificate_files_and_client_context(tmp_path: Path) -> None:
    certificate = issue_tls_certificate(tmp_path)
    assert Path(certificate.certfile).read_text().count("BEGIN CERTIFICATE") >= 1
    assert "PRIVATE KEY" in Path(certificate.keyfile).read_text()
    context = certificate.client_context()
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_the_pytest_plugin_provides_a_certificate(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from pathlib import Path

        pytest_plugins = ["trio_stream.testing.pytest_plugin"]

        def test_files(tls_certificate):
            assert Path(tls_certificate.certfile).exists()
            assert Path(tls_certificate.ca_file).exists()
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
