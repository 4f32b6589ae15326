"""The Redis benchmark runs end to end (tiny counts; only correctness is asserted)."""

from __future__ import annotations

import pytest

from benchmarks import redis as redis_benchmark
from tests.brokers._redis_server import RedisServer

pytestmark = pytest.mark.needs_redis


def test_benchmark_delivers_every_event_in_order(redis_server: RedisServer) -> None:
    result = redis_benchmark.run(
        subscribers=6, processes=2, events=20, rate=0, redis_url=redis_server.url
    )
    assert result["errors"] == 0
    assert result["deliveries"] == 6 * 20
    assert set(result["latency_ms"]) == {"p50", "p90", "p99", "max"}
    assert "| 6 (2) | 20 | max |" in redis_benchmark.to_markdown(result)


def test_benchmark_rejects_impossible_shapes() -> None:
    with pytest.raises(ValueError, match="subscribers"):
        redis_benchmark.run(subscribers=1, processes=2)
