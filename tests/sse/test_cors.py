"""CORS on real Hypercorn: preflights, allowed and refused origins, and nothing when off."""

from __future__ import annotations

import logging

import httpx
import pytest
import trio

from trio_stream.core import Hub
from trio_stream.protocol import Event
from trio_stream.sse import CORS, Route, Router, hub_endpoint
from trio_stream.sse._asgi import ASGIApp, Receive, Scope, Send, send_plain
from trio_stream.testing import open_sse_reader, open_test_server

SAFETY = 15  # seconds: a bound on each test, never a wait for something to happen
PAGE = "https://app.example.com"
STRANGER = "https://evil.example.net"


def preflight_headers(origin: str, method: str = "GET", headers: str = "") -> dict[str, str]:
    asked = {"origin": origin, "access-control-request-method": method}
    if headers:
        asked["access-control-request-headers"] = headers
    return asked


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


def sse_app(hub: Hub) -> Router:
    async def publish(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send_plain(send, 201, "ok")

    return Router(
        [
            Route("/sse/{topic}", hub_endpoint(hub, keepalive_interval=None)),
            Route("/api/topics/{topic}", publish, methods=["POST"]),
        ]
    )


async def test_preflight_from_an_allowed_origin_is_answered() -> None:
    app = CORS(sse_app(Hub()), allow_origins=[PAGE], max_age=120)
    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server, httpx.AsyncClient() as client:
            answer = await client.options(
                server.url + "/sse/news",
                headers=preflight_headers(PAGE, "GET", "last-event-id"),
            )
    assert answer.status_code == 204
    assert answer.content == b""
    assert cors_headers(answer) == {
        "access-control-allow-origin": PAGE,
        "access-control-allow-methods": "GET, POST",
        "access-control-allow-headers": "Last-Event-ID, Content-Type",
        "access-control-max-age": "120",
    }
    assert "origin" in answer.headers["vary"].lower()


@pytest.mark.parametrize(
    ("origin", "method", "headers"),
    [
        (STRANGER, "GET", ""),  # origin off the list
        (PAGE + ":8443", "GET", ""),  # another port is another origin
        ("null", "GET", ""),  # sandboxed frames, local files
        (PAGE, "DELETE", ""),  # method not allowed
        (PAGE, "GET", "last-event-id, x-secret"),  # one header not allowed
    ],
)
async def test_disallowed_preflights_get_403_without_cors_headers(
    origin: str, method: str, headers: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="trio_stream.sse")
    cors = CORS(sse_app(Hub()), allow_origins=[PAGE])
    with trio.fail_after(SAFETY):
        async with open_test_server(cors) as server, httpx.AsyncClient() as client:
            answer = await client.options(
                server.url + "/sse/news", headers=preflight_headers(origin, method, headers)
            )
    assert answer.status_code == 403
    assert cors_headers(answer) == {}
    assert answer.text == "CORS request not allowed"
    assert any("CORS preflight" in record.getMessage() for record in caplog.records)
    assert cors.statistics().preflights_refused == 1


async def test_stream_from_an_allowed_origin_carries_the_cors_headers() -> None:
    hub = Hub()
    cors = CORS(sse_app(hub), allow_origins=[PAGE], allow_credentials=True)
    with trio.fail_after(SAFETY):
        async with (
            open_test_server(cors) as server,
            httpx.AsyncClient() as client,
            client.stream("GET", server.url + "/sse/news", headers={"origin": PAGE}) as response,
            open_sse_reader(response) as reader,
        ):
            assert response.status_code == 200
            assert cors_headers(response) == {
                "access-control-allow-origin": PAGE,
                "access-control-allow-credentials": "true",
            }
            assert response.headers["vary"] == "Origin"
            assert response.headers["content-type"].startswith("text/event-stream")
            await reader.chunk()
            await hub.publish("news", Event("hello"))
            assert [e.data for e in await reader.events(1)] == ["hello"]
    assert cors.statistics().shared == 1


async def test_other_origins_and_same_origin_requests_get_no_cors_headers() -> None:
    cors = CORS(sse_app(Hub()), allow_origins=[PAGE], expose_headers=["X-Id"])
    with trio.fail_after(SAFETY):
        async with open_test_server(cors) as server, httpx.AsyncClient() as client:
            stranger = await client.post(
                server.url + "/api/topics/news", json={}, headers={"origin": STRANGER}
            )
            no_origin = await client.post(server.url + "/api/topics/news", json={})
            allowed = await client.post(
                server.url + "/api/topics/news", json={}, headers={"origin": PAGE}
            )
            plain_options = await client.options(  # not a preflight: the app answers
                server.url + "/api/topics/news", headers={"origin": PAGE}
            )
    assert (stranger.status_code, no_origin.status_code, allowed.status_code) == (201, 201, 201)
    assert cors_headers(stranger) == {}
    assert cors_headers(no_origin) == {}
    assert stranger.headers["vary"] == no_origin.headers["vary"] == "Origin"
    assert cors_headers(allowed) == {
        "access-control-allow-origin": PAGE,
        "access-control-expose-headers": "X-Id",
    }
    assert plain_options.status_code == 405
    stats = cors.statistics()
    assert (stats.shared, stats.not_shared, stats.preflights_allowed) == (2, 1, 0)


async def test_wildcard_allows_any_origin_without_credentials() -> None:
    cors = CORS(sse_app(Hub()), allow_origins=["*"])
    with trio.fail_after(SAFETY):
        async with open_test_server(cors) as server, httpx.AsyncClient() as client:
            answer = await client.options(
                server.url + "/sse/news", headers=preflight_headers(STRANGER)
            )
            posted = await client.post(
                server.url + "/api/topics/news", json={}, headers={"origin": STRANGER}
            )
            same_origin = await client.post(server.url + "/api/topics/news", json={})
    assert cors_headers(same_origin) == {}
    assert "vary" not in same_origin.headers
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in answer.headers
    assert posted.headers["access-control-allow-origin"] == "*"
    assert "vary" not in posted.headers


async def test_without_the_middleware_no_cors_header_is_ever_sent() -> None:
    hub = Hub()
    app: ASGIApp = sse_app(hub)
    with trio.fail_after(SAFETY):
        async with open_test_server(app) as server, httpx.AsyncClient() as client:
            preflight = await client.options(
                server.url + "/sse/news", headers=preflight_headers(PAGE, "GET", "last-event-id")
            )
            posted = await client.post(
                server.url + "/api/topics/news", json={}, headers={"origin": PAGE}
            )
            async with client.stream(
                "GET", server.url + "/sse/news", headers={"origin": PAGE}
            ) as response:
                streamed = response
    for answer in (preflight, posted, streamed):
        assert cors_headers(answer) == {}
    assert preflight.status_code == 405
    assert streamed.status_code == 200


def test_origins_are_normalised() -> None:
    cors = CORS(
        sse_app(Hub()),
        allow_origins=["HTTPS://App.Example.com:443/", "http://[::1]:8000", "http://localhost:80"],
    )
    assert cors.allow_origins == {
        "https://app.example.com",
        "http://[::1]:8000",
        "http://localhost",
    }


@pytest.mark.parametrize(
    ("origins", "credentials"),
    [
        (["*"], True),
        (["null"], False),
        (["app.example.com"], False),
        (["ftp://app.example.com"], False),
        (["https://app.example.com/path"], False),
        (["https://app.example.com:99999"], False),
        (["https://user@app.example.com"], False),
    ],
)
def test_bad_configurations_are_refused(origins: list[str], credentials: bool) -> None:
    with pytest.raises(ValueError, match="origin"):
        CORS(sse_app(Hub()), allow_origins=origins, allow_credentials=credentials)


def test_a_single_origin_string_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        CORS(sse_app(Hub()), allow_origins=PAGE)
    with pytest.raises(ValueError, match="max_age"):
        CORS(sse_app(Hub()), allow_origins=[PAGE], max_age=-1)
