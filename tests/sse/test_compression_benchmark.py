"""The compression benchmark runs and reports (a smoke test: no timing is asserted)."""

from __future__ import annotations

import pytest

from benchmarks.compression import STREAMS, main, run


def test_quick_run_reports_every_stream_and_the_endpoint() -> None:
    result = run(quick=True)
    assert set(result["encoders"]) == set(STREAMS)
    for row in result["encoders"].values():
        # gzip saves bytes, a batch of 16 compresses better than one event,
        # and nothing beats compressing the whole stream without flushes.
        assert 0 < row["whole_stream_gzip_share"] <= row["sync_flush_16_share"]
        assert row["sync_flush_16_share"] < row["sync_flush_1_share"] < 1
        assert row["sync_flush_1_us_per_event"] > 0
    endpoint = result["endpoint_tokens"]
    assert endpoint["events"] == 500
    assert 0 < endpoint["gzip_bytes"] < endpoint["identity_bytes"]


def test_command_line_prints_the_tables(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--events", "50", "--repeat", "1"])
    out = capsys.readouterr().out
    assert out.startswith("gzip with a flush per write, 50 events per stream")
    assert "| tokens |" in out
    assert "Through the endpoint on Hypercorn" in out
