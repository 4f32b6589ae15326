"""The demo page in a real browser (Chromium through Playwright) against the real server.

Each test saves a screenshot under ``test-output/screenshots/``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.demo._browser import BrowserThread, RemotePage
from tests.demo._demo_helpers import (
    SAFETY,
    demo_client,
    fast_config,
    read_metrics,
    running_demo,
    serve_demo_in,
)
from trio_stream.demo import DemoServer
from trio_stream.testing import FakeOpenAI, FaultProxy, open_test_server

pytestmark = pytest.mark.needs_browser

DEMO = "window.trioStreamDemo"


@asynccontextmanager
async def showing(browser: BrowserThread, url: str, **options: Any) -> AsyncIterator[RemotePage]:
    """``url`` open in a fresh browser context for the block; no uncaught page errors."""
    page = await browser.open_page(url, **options)
    try:
        yield page
    finally:
        with trio.move_on_after(SAFETY) as scope:
            scope.shield = True
            await page.close()
    assert page.errors == []


def _position(event_id: str) -> int:
    return int(event_id.rsplit("-", 1)[1])


async def test_ticker_resumes_without_a_gap_after_the_connection_is_cut(
    browser: BrowserThread, screenshots: Path
) -> None:
    proxy = FaultProxy("127.0.0.1", 0)
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.serve)
        async with (
            running_demo(allowed_origins=(proxy.url(),)) as server,
            demo_client(server) as client,
        ):
            proxy.target_port = server.port
            async with showing(browser, proxy.url(path="/")) as page:
                await page.wait_for(f"() => {DEMO}.ticker.received.length >= 5")
                proxy.cut_after_bytes = 0  # the stream is cut at its next write...
                await page.wait_for(f"() => {DEMO}.ticker.live.dropped")
                proxy.cut_after_bytes = None  # ...and the reconnection goes through
                seen = await page.evaluate(f"() => {DEMO}.ticker.received.length")
                await page.wait_for(
                    f"(seen) => {DEMO}.ticker.live.reconnects >= 1"
                    f" && {DEMO}.ticker.received.length >= seen + 10",
                    arg=seen,
                )
                ticker = await page.evaluate(
                    f"() => ({{received: {DEMO}.ticker.received, missed: {DEMO}.ticker.missed,"
                    f" resumes: {DEMO}.ticker.live.resumes}})"
                )
                label = await page.text("#ticker-status .label")
                await page.screenshot(screenshots / "ticker-resumed-after-cut.png")
                stats = await read_metrics(client)
        nursery.cancel_scope.cancel()
    seqs = [tick["seq"] for tick in ticker["received"]]
    ids = [tick["id"] for tick in ticker["received"]]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no gap, no duplicate
    assert [_position(i) for i in ids] == sorted({_position(i) for i in ids})
    assert ticker["missed"] == 0
    resumed_from = ticker["resumes"][0]
    assert resumed_from in ids[:seen]
    assert label == f"resumed from id {ticker['resumes'][-1]}"
    assert proxy.cuts >= 1
    assert stats['trio_stream_resumes_total{transport="sse",outcome="recovered"}'] >= 1


async def test_two_pages_chat_over_websockets_with_presence(
    browser: BrowserThread, screenshots: Path
) -> None:
    messages = f"{DEMO}.chat.messages"
    async with (
        running_demo() as server,
        demo_client(server) as client,
        showing(browser, server.url + "/?name=alice") as alice,
        showing(browser, server.url + "/?name=bob") as bob,
    ):
        await alice.wait_for_selector('#chat-users li[title="bob"]')
        await bob.wait_for_selector('#chat-users li[title="alice"]')
        await alice.fill("#chat-input", "Hello Bob!")
        await alice.click("#chat-send")
        await bob.wait_for(f"() => {messages}.some(m => m.name === 'alice')")
        await bob.fill("#chat-input", "Hi Alice, got it.")
        await bob.click("#chat-send")
        await alice.wait_for(f"() => {messages}.some(m => m.name === 'bob')")
        online = await alice.text("#chat-online")
        seen_by_alice = await alice.evaluate(f"() => {messages}")
        seen_by_bob = await bob.evaluate(f"() => {messages}")
        await alice.screenshot(screenshots / "chat-alice.png")
        await bob.screenshot(screenshots / "chat-bob.png")
        stats = await read_metrics(client)
    assert online == "2 online"
    assert seen_by_alice == seen_by_bob
    assert [(m["name"], m["text"]) for m in seen_by_alice] == [
        ("alice", "Hello Bob!"),
        ("bob", "Hi Alice, got it."),
    ]
    assert stats['trio_stream_connections_open{transport="websocket"}'] == 2
    assert stats['trio_stream_connections_open{transport="sse"}'] == 2  # the two tickers
    assert stats['trio_stream_events_sent_total{transport="sse"}'] > 0
    assert stats['trio_stream_events_sent_total{transport="websocket"}'] >= 4
    assert stats["trio_stream_room_messages_published_total"] == 2


async def test_stop_button_ends_the_answer_and_closes_the_upstream_request(
    browser: BrowserThread, screenshots: Path
) -> None:
    fake = FakeOpenAI([f" word{n}" for n in range(40)], hold_after=6)
    async with (
        open_test_server(fake) as upstream,
        running_demo(upstream=upstream.url + "/v1") as server,
        demo_client(server) as client,
        showing(browser, server.url + "/") as page,
    ):
        await page.click("#llm-ask")
        await page.wait_for(f"() => {DEMO}.llm.text.includes('word5')")  # tokens may merge
        during = await read_metrics(client)
        await page.click("#llm-stop")
        with trio.fail_after(SAFETY):
            await fake.requests[0].ended.wait()
        await page.wait_for(f"() => {DEMO}.llm.status === 'stopped'")
        answer = await page.text("#llm-answer")
        chunks = int(await page.text("#llm-chunks"))
        await page.screenshot(screenshots / "llm-stopped.png")
    request = fake.requests[0]
    assert 1 <= chunks <= request.tokens_sent  # the relay may merge tokens, never split one
    assert request.disconnected
    assert request.tokens_sent == 6
    assert answer.startswith("word0 word1 word2 word3 word4 word5")
    assert "Stopped" in answer
    assert during["trio_stream_llm_requests_in_flight"] == 1


async def test_job_progress_bar_reaches_100_percent(
    browser: BrowserThread, screenshots: Path
) -> None:
    async with (
        running_demo(job_steps=5, job_duration=1.0) as server,
        showing(browser, server.url + "/") as page,
    ):
        await page.click("#job-start")
        await page.wait_for_selector('.job [role=progressbar][aria-valuenow="20"]')
        await page.wait_for_selector('.job[data-state="done"] [aria-valuenow="100"]')
        width = await page.evaluate("() => document.querySelector('.job .fill').style.width")
        label = await page.text(".job .pct")
        await page.screenshot(screenshots / "job-done.png")
    assert width == "100%"
    assert label == "done · 100%"


async def test_page_survives_a_server_restart_and_resets_its_state(
    browser: BrowserThread, screenshots: Path
) -> None:
    first_scope = trio.CancelScope()
    async with trio.open_nursery() as nursery:
        first: DemoServer = await nursery.start(serve_demo_in, first_scope, fast_config())
        async with showing(browser, first.url + "/?name=carol") as page:
            await page.wait_for(f"() => {DEMO}.ticker.received.length >= 3")
            await page.fill("#chat-input", "before the restart")
            await page.click("#chat-send")
            await page.wait_for(f"() => {DEMO}.chat.messages.length === 1")
            await page.evaluate(f"() => {{ {DEMO}.sameDocument = true; }}")
            first_scope.cancel()  # the first server shuts down...
            await page.wait_for(f"() => {DEMO}.ticker.live.dropped")
            # ...and a new one, with new event ids, takes its ports.
            async with running_demo(port=first.port, ws_port=first.ws_port):
                await page.wait_for(
                    f"() => {DEMO}.ticker.live.resets >= 1 && {DEMO}.chat.resets >= 1"
                    f" && {DEMO}.ticker.received.length"
                    f" - {DEMO}.ticker.received.findIndex(t => t.reset) > 3"
                )
                state = await page.evaluate(
                    f"() => ({{same: {DEMO}.sameDocument, chat: {DEMO}.chat.messages,"
                    f" received: {DEMO}.ticker.received}})"
                )
                chat_lines = await page.text("#chat-messages")
                await page.screenshot(screenshots / "restart-reset.png")
    assert state["same"] is True  # no reload: the same document kept running
    assert state["chat"] == []
    assert "no longer available" in chat_lines
    after = state["received"][[t.get("reset") for t in state["received"]].index(True) + 1 :]
    seqs = [t["seq"] for t in after if not t.get("reset")]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


async def test_page_runs_under_its_content_security_policy_in_dark_mode(
    browser: BrowserThread, screenshots: Path
) -> None:
    async with (
        running_demo() as server,
        showing(browser, server.url + "/", csp=True, color_scheme="dark") as page,
    ):
        await page.wait_for_selector('#ticker-status[data-state="connected"]')
        await page.wait_for_selector('#chat-status[data-state="connected"]')
        await page.wait_for_selector("#ticker-last-id[title]")
        await page.click("#job-start")
        await page.click("#llm-ask")
        await page.wait_for_selector('#llm-status[data-state="connected"]')
        await page.wait_for_selector('.job[data-state="done"]')
        await page.screenshot(screenshots / "overview-dark.png")
        violations = [e for e in page.console_errors if "Content Security Policy" in e]
    assert violations == []
