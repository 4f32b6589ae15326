"""The demo's parts on their own: config, origins, names, ticker, jobs, metrics text."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
import trio.testing

from trio_stream.core import Hub, HubStatistics, QueueStatistics
from trio_stream.core import Overflow as CoreOverflow
from trio_stream.demo import (
    AnswerStatistics,
    DemoConfig,
    Exposition,
    JobRunner,
    JobsBusy,
    JobStatistics,
    MetricsSnapshot,
    Rooms,
    RoomStatistics,
    SSEStatistics,
    StaticFiles,
    page_origins,
    render_metrics,
    run_ticker,
)
from trio_stream.demo._jobs import check_job
from trio_stream.demo._rooms import visitor_name
from trio_stream.protocol import Event


@pytest.mark.parametrize(
    "options",
    [
        {"host": ""},
        {"port": -1},
        {"ws_port": 65536},
        {"port": 9000, "ws_port": 9000},
        {"token": "  "},
        {"ticker_interval": float("nan")},
        {"ticker_interval": -0.5},
        {"upstream": "localhost:8080/v1"},
        {"sse_retry": -1},
        {"keepalive_interval": 0},
        {"job_duration": float("inf")},
        {"graceful_timeout": -1},
        {"job_steps": 0},
        {"max_jobs": 0},
        {"max_body_size": 0},
    ],
)
def test_config_rejects_nonsense(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011  each case has its own message
        DemoConfig(**options)


def test_config_hides_the_token_from_its_repr() -> None:
    config = DemoConfig(port=0, ws_port=0, token="s3cret", upstream_api_key="sk-1")
    assert config.token_required
    assert "s3cret" not in repr(config)
    assert "sk-1" not in repr(config)
    assert not DemoConfig().token_required


def test_page_origins() -> None:
    assert page_origins("127.0.0.1", 8000) == [
        "http://127.0.0.1:8000",
        "http://[::1]:8000",
        "http://localhost:8000",
    ]
    assert page_origins("0.0.0.0", 80, ("https://demo.example",))[0] == "http://127.0.0.1:80"
    assert "https://demo.example" in page_origins("0.0.0.0", 80, ("https://demo.example",))
    assert page_origins("10.1.2.3", 8000) == ["http://10.1.2.3:8000"]
    assert page_origins("demo.example", 8000) == ["http://demo.example:8000"]
    assert "http://localhost:8000" in page_origins("localhost", 8000)
    assert "http://[::1]:8000" in page_origins("::1", 8000)


def test_visitor_names_are_cleaned_up() -> None:
    assert visitor_name("  Ann   Lee ") == "Ann Lee"
    assert visitor_name("<script>x</script>") == "scriptxscript"
    assert len(visitor_name("a" * 100)) == 32
    assert visitor_name("<>").startswith("guest-")
    assert visitor_name(None).startswith("guest-")


def test_rooms_validate_turns_messages_into_events() -> None:
    rooms = Rooms(Hub())
    assert rooms.validate({"data": "hi"}) == Event("hi")
    assert rooms.validate({"data": {"é": 1}, "event": "chat"}) == Event('{"é":1}', "chat")
    bad: object
    for bad in ([], {"text": 1}, {"data": 1, "event": 5}, {"data": 1, "event": "a\nb"}):
        with pytest.raises(ValueError):  # noqa: PT011  the message goes nowhere but the log
            rooms.validate(bad)


@pytest.mark.parametrize(
    ("steps", "duration"),
    [
        (0, 1.0),
        (101, 1.0),
        (True, 1.0),
        ("5", 1.0),
        (5, 0),
        (5, 601),
        (5, float("nan")),
        (5, None),
    ],
)
def test_check_job_bounds(steps: object, duration: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011  fixed, client-safe messages
        check_job(steps, duration)


async def test_ticker_publishes_at_its_pace_and_stops_with_the_hub(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hub = Hub()
    async with hub.subscribe("ticker") as subscription, trio.open_nursery() as nursery:
        start = trio.current_time()
        await nursery.start(lambda task_status: run_ticker(hub, seed=1, task_status=task_status))
        ticks = [await subscription.receive() for _ in range(3)]
        elapsed = trio.current_time() - start
        hub.close()
    seqs = [json.loads(tick.data)["seq"] for tick in ticks]
    assert seqs == [1, 2, 3]
    assert elapsed == pytest.approx(2.0)
    with pytest.raises(ValueError, match="interval"):
        await run_ticker(hub, interval=0)


async def test_jobs_publish_progress_and_count(autojump_clock: trio.testing.MockClock) -> None:
    hub = Hub()
    runner = JobRunner(hub, max_jobs=1, default_steps=2, default_duration=1.0)
    with pytest.raises(RuntimeError):
        await runner.start()
    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        job = await runner.start()
        with pytest.raises(JobsBusy):
            await runner.start()
        async with hub.subscribe(job.topic, last_event_id=job.first_event_id) as subscription:
            events = [await subscription.receive() for _ in range(2)]
        await trio.testing.wait_all_tasks_blocked()  # the first job's task has ended
        long_job = await runner.start(duration=100.0)
        assert long_job.steps == 2
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert [json.loads(e.data)["percent"] for e in events] == [50, 100]
    assert runner.statistics() == JobStatistics(
        running=0, capacity=1, started=2, completed=1, cancelled=1
    )


async def test_a_job_stops_quietly_when_the_hub_closes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hub = Hub()
    runner = JobRunner(hub, default_steps=3, default_duration=3.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        await runner.start()
        hub.close()
        await trio.sleep(5)
        with pytest.raises(Exception, match="closed"):
            await runner.start()
        nursery.cancel_scope.cancel()
    assert runner.statistics().cancelled == 1
    with pytest.raises(ValueError, match="max_jobs"):
        JobRunner(hub, max_jobs=0)


def test_exposition_escapes_labels_and_formats_numbers() -> None:
    out = Exposition()
    out.family("x_total", "counter", "Things.", [({"name": 'a"b\\c\nd'}, 2.0), ({}, 0.5)])
    assert out.text().splitlines() == [
        "# HELP trio_stream_x_total Things.",
        "# TYPE trio_stream_x_total counter",
        'trio_stream_x_total{name="a\\"b\\\\c\\nd"} 2',
        "trio_stream_x_total 0.5",
    ]
    with pytest.raises(ValueError, match="kind"):
        out.single("y", "histogram", "No.", 1)


def test_metrics_render_without_a_websocket_server() -> None:
    queue = QueueStatistics(8, CoreOverflow.DISCONNECT, 3, 5, 10, 0, False, False)
    snapshot = MetricsSnapshot(
        hub=HubStatistics(1, 2, 30, 4, 5, False),
        sse=SSEStatistics(2, 9, 100, 3, 1, 6, 4, 256),
        websocket=None,
        websocket_queues=(queue,),
        rooms=RoomStatistics(0, 0, 0, 0),
        jobs=JobStatistics(0, 32, 0, 0, 0),
        answers=AnswerStatistics(0, {}, 0),
    )
    lines = set(render_metrics(snapshot).splitlines())
    assert 'trio_stream_connections_open{transport="websocket"} 0' in lines
    assert 'trio_stream_resumes_total{transport="sse",outcome="recovered"} 2' in lines
    assert 'trio_stream_queue_depth{queue="websocket_outbound"} 3' in lines
    assert 'trio_stream_queue_depth_max{queue="sse"} 4' in lines
    assert 'trio_stream_slow_consumers_disconnected_total{layer="hub"} 5' in lines
    assert not any(line.startswith("trio_stream_websocket_rejected") for line in lines)


def test_static_files_need_their_page() -> None:
    with pytest.raises(RuntimeError, match=r"index\.html"):
        StaticFiles(package="trio_stream.core")
    files = StaticFiles()
    assert {"app.js", "demo.css", "favicon.svg"} <= files.names
