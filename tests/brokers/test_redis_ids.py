"""Pure tests of the Redis backplane's ids, URL handling and constructor checks (no server)."""

from __future__ import annotations

import ssl

import pytest

from trio_stream.brokers import BrokerError, RedisBroker
from trio_stream.brokers._redis_client import redact_url
from trio_stream.brokers._redis_ids import (
    EPOCH_HEX_LENGTH,
    RedisPosition,
    format_event_id,
    new_epoch,
    parse_event_id,
)
from trio_stream.core import History
from trio_stream.protocol import Event


def test_event_id_round_trips_and_orders_within_an_epoch() -> None:
    epoch = new_epoch()
    assert len(epoch) == EPOCH_HEX_LENGTH
    first = format_event_id(epoch, "1700000000000-0")
    second = format_event_id(epoch, "1700000000000-1")
    assert first.event_id == f"{epoch}:1700000000000-0"
    assert first.stream_id == "1700000000000-0"
    assert parse_event_id(first.event_id) == first
    assert first < second
    assert parse_event_id(second.event_id) == RedisPosition(epoch, 1700000000000, 1)


@pytest.mark.parametrize(
    "event_id",
    [
        None,
        "",
        "3f9a0c1e-42",  # a MemoryBroker id
        "abcdef012345:12",  # no sequence
        "ABCDEF012345:1-0",  # upper-case epoch
        "abcdef01234:1-0",  # short epoch
        "abcdef012345:1-0\n",
        "abcdef012345:" + "9" * 21 + "-0",  # more digits than a 64-bit id
    ],
)
def test_foreign_or_malformed_ids_are_unknown(event_id: str | None) -> None:
    assert parse_event_id(event_id) is None


@pytest.mark.parametrize(
    ("epoch", "stream_id"), [("abc", "1-0"), ("x" * 12, "1-0"), (new_epoch(), "1")]
)
def test_format_rejects_what_redis_would_never_return(epoch: str, stream_id: str) -> None:
    with pytest.raises(ValueError, match="stream entry id"):
        format_event_id(epoch, stream_id)


def test_position_is_the_stream_id_of_any_epoch() -> None:
    broker = RedisBroker("redis://127.0.0.1:1/0")
    assert broker.position("0123456789ab:5-7") == (5, 7)
    assert broker.position("3f9a0c1e-42") is None


def test_redact_url_masks_the_password_only() -> None:
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert redact_url("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert redact_url("rediss://alice:pw@h:1/0") == "rediss://alice:***@h:1/0"
    broker = RedisBroker("redis://alice:s3cret@127.0.0.1:1/0")
    assert "s3cret" not in broker.url


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"url": "http://127.0.0.1/"}, ValueError),
        ({"url": "redis://h/0", "ssl_context": ssl.create_default_context()}, ValueError),
        ({"key_prefix": ""}, ValueError),
        ({"key_prefix": "a{b}"}, ValueError),
        ({"connect_timeout": 0}, ValueError),
        ({"command_timeout": float("inf")}, ValueError),
        ({"tail_block": "1"}, TypeError),
        ({"tail_batch": 0}, ValueError),
        ({"replay_batch": True}, ValueError),
        ({"max_connections": 1.5}, ValueError),
        ({"max_tails": -1}, ValueError),
    ],
)
def test_constructor_rejects_bad_configuration(kwargs: dict[str, object], error: type) -> None:
    kwargs.setdefault("url", "redis://127.0.0.1:1/0")
    with pytest.raises(error):
        RedisBroker(**kwargs)  # type: ignore[arg-type]


def test_history_is_kept_as_given() -> None:
    history = History(max_events=10, max_age=60.0)
    assert RedisBroker("rediss://127.0.0.1:1/0", history).history is history


async def test_a_broker_that_is_not_running_says_so() -> None:
    broker = RedisBroker("redis://127.0.0.1:1/0")
    assert not broker.available
    with pytest.raises(BrokerError, match="not running"):
        await broker.publish("t", Event("x"))
    with pytest.raises(BrokerError, match="not running"):
        await broker.watch("t")
    assert await broker.replay("t", "garbage") is None
    assert broker.statistics().tails == 0
