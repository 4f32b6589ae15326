"""Many topics on one EventSource in a real browser (Chromium), through a cutting proxy.

Screenshots go to ``test-output/screenshots/`` like the other browser tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from tests.demo._browser import BrowserThread
from tests.demo._demo_helpers import demo_client, publish, running_demo
from tests.demo.test_demo_browser import DEMO, showing
from trio_stream.testing import FaultProxy

pytestmark = pytest.mark.needs_browser

TOPICS = [f"t{i}" for i in range(10)]
PER_TOPIC = 20

# Runs in the demo page's own context: one EventSource on /sse?topic=t0..t9 that
# records each event under its topic (read from the multi-topic id).
OPEN_STREAM = """(topics) => {
  const got = Object.fromEntries(topics.map((t) => [t, []]));
  const seen = (window.multiTopic = {got, opens: 0, errors: 0, resets: 0});
  const query = topics.map((t) => `topic=${t}`).join("&");
  const source = new EventSource(`/sse?${query}`);
  source.onopen = () => { seen.opens += 1; };
  source.onerror = () => { seen.errors += 1; };
  source.addEventListener("n", (e) => {
    seen.last = e.lastEventId;
    got[topics[Number(e.lastEventId.split(";")[2])]].push(JSON.parse(e.data));
  });
  source.addEventListener("reset", () => { seen.resets += 1; });
}"""


async def test_ten_topics_on_one_event_source_arrive_exactly_once_across_cuts(
    browser: BrowserThread, screenshots: Path
) -> None:
    proxy = FaultProxy("127.0.0.1", 0)
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.serve)
        async with (
            running_demo(
                allowed_origins=(proxy.url(),), ticker_interval=0, sse_retry=50
            ) as server,
            demo_client(server) as client,
        ):
            proxy.target_port = server.port
            async with showing(browser, proxy.url(path="/")) as page:
                await page.wait_for(f"() => {DEMO}.ready")
                await page.evaluate(OPEN_STREAM, TOPICS)
                # Open means subscribed: the server sends its headers only after that.
                await page.wait_for("() => window.multiTopic.opens >= 1")
                # A first event gives the page an id holding a position in every topic
                # (a stream cut before its first event would restart live, with a gap).
                await publish(client, "t0", {"topic": "t0", "n": -1}, event="n")
                await page.wait_for("() => window.multiTopic.got.t0.length === 1")
                # From now on every connection is cut after a few events: the stream
                # resumes all ten topics from the last id it saw, many times over.
                proxy.cut_after_bytes = 4000
                for n in range(PER_TOPIC):
                    for topic in TOPICS:
                        await publish(client, topic, {"topic": topic, "n": n}, event="n")
                await page.wait_for(
                    "(n) => Object.values(window.multiTopic.got).every((l) => l.length >= n)",
                    arg=PER_TOPIC,
                )
                proxy.cut_after_bytes = None
                await publish(client, "t0", {"topic": "t0", "n": PER_TOPIC}, event="n")
                await page.wait_for("(n) => window.multiTopic.got.t0.length > n", arg=PER_TOPIC)
                seen = await page.evaluate("() => window.multiTopic")
                await page.screenshot(screenshots / "multi-topic-after-cuts.png")
        nursery.cancel_scope.cancel()
    for topic in TOPICS:
        numbers = range(-1, PER_TOPIC + 1) if topic == "t0" else range(PER_TOPIC)
        assert seen["got"][topic] == [{"topic": topic, "n": n} for n in numbers]
    assert seen["resets"] == 0
    assert proxy.cuts >= 3
    assert seen["opens"] >= 4  # the first connection and one per cut at least three times


async def test_more_jobs_than_connections_all_finish_on_one_stream(
    browser: BrowserThread, screenshots: Path
) -> None:
    # Seven jobs at once: one stream per job would exceed the browser's six connections.
    async with (
        running_demo(job_steps=2, job_duration=2.0) as server,
        showing(browser, server.url + "/") as page,
    ):
        for count in range(1, 8):
            await page.click("#job-start")
            await page.wait_for(f"(n) => Object.keys({DEMO}.jobs).length === n", arg=count)
        await page.wait_for(
            f"() => Object.values({DEMO}.jobs).every((job) => job.state === 'done')"
        )
        streams = await page.evaluate(
            f"() => ({{topics: {DEMO}.jobsStream.topics.length,"
            f" source: {DEMO}.jobsStream.source}})"
        )
        labels = await page.evaluate(
            "() => [...document.querySelectorAll('.job .pct')].map((e) => e.textContent)"
        )
        await page.screenshot(screenshots / "jobs-on-one-stream.png")
    assert labels == ["done · 100%"] * 7
    assert streams["topics"] == 0  # every job done: the stream is closed
    assert streams["source"] is None
