"""The fan-out benchmark runs and reports (a smoke test: no timing is asserted)."""

from __future__ import annotations

import pytest

from benchmarks.fanout import main, run, to_markdown


def test_run_reports_both_designs() -> None:
    result = run(subscribers=5, events=20, capacity=4, repeats=1)
    assert result["subscribers"] == 5
    for key in ("hub_events_per_s", "naive_events_per_s", "ratio", "cpu_ratio"):
        assert result[key] > 0
    table = to_markdown(result)
    assert "| trio_stream Hub" in table
    assert "| naive" in table


def test_command_line_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--subscribers", "3", "--events", "5", "--repeats", "1"])
    out = capsys.readouterr().out
    assert out.startswith("Fan-out of 1 topic to 3 subscribers")
