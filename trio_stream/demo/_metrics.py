"""``GET /metrics``: the library's ``statistics()`` snapshots in Prometheus text format."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..core import HubStatistics, QueueStatistics
from ..sse import ConnectionLimitStatistics, RateLimitStatistics
from ..websocket import WebSocketServerStatistics
from ._answers import AnswerStatistics
from ._jobs import JobStatistics
from ._rooms import RoomStatistics
from ._streams import SSEStatistics

__all__ = ["CONTENT_TYPE", "Exposition", "MetricsSnapshot", "render_metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The content type of the Prometheus text exposition format."""

_PREFIX = "trio_stream_"

Labels = Mapping[str, str]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class Exposition:
    """Builds a Prometheus text exposition: one ``# HELP`` / ``# TYPE`` per family,
    then its samples. Names get the ``trio_stream_`` prefix; counters should end
    in ``_total``."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def family(
        self, name: str, kind: str, help_text: str, samples: Iterable[tuple[Labels, float]]
    ) -> None:
        """Add a metric family of ``kind`` (``counter`` or ``gauge``) and its samples."""
        if kind not in ("counter", "gauge"):
            raise ValueError("kind is 'counter' or 'gauge'")
        full = _PREFIX + name
        self._lines.append(f"# HELP {full} {help_text}")
        self._lines.append(f"# TYPE {full} {kind}")
        for labels, value in samples:
            label_text = ",".join(f'{key}="{_escape(val)}"' for key, val in labels.items())
            series = f"{full}{{{label_text}}}" if label_text else full
            self._lines.append(f"{series} {_number(value)}")

    def single(self, name: str, kind: str, help_text: str, value: float) -> None:
        """Add a family with one unlabelled sample."""
        self.family(name, kind, help_text, [({}, value)])

    def text(self) -> str:
        """The exposition, newline-terminated."""
        return "\n".join(self._lines) + "\n"


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """Everything ``/metrics`` reports, taken at one moment (``websocket`` is None before
    the WebSocket server started; ``websocket_queues`` are its open peers' outbound queues;
    ``sse_limits`` and ``publish_limit``, when given, add the refusals of the limits)."""

    hub: HubStatistics
    sse: SSEStatistics
    websocket: WebSocketServerStatistics | None
    websocket_queues: tuple[QueueStatistics, ...]
    rooms: RoomStatistics
    jobs: JobStatistics
    answers: AnswerStatistics
    sse_limits: ConnectionLimitStatistics | None = None
    publish_limit: RateLimitStatistics | None = None


def _per_transport(sse: float, websocket: float) -> list[tuple[Labels, float]]:
    return [({"transport": "sse"}, sse), ({"transport": "websocket"}, websocket)]


def render_metrics(snapshot: MetricsSnapshot) -> str:
    """The Prometheus text for ``snapshot``."""
    out = Exposition()
    hub, sse, rooms = snapshot.hub, snapshot.sse, snapshot.rooms
    ws = snapshot.websocket
    queues = snapshot.websocket_queues
    out.family(
        "connections_open",
        "gauge",
        "Streaming connections open now.",
        _per_transport(sse.open, ws.open if ws else 0),
    )
    out.family(
        "connections_total",
        "counter",
        "Streaming connections accepted since start.",
        _per_transport(sse.started, ws.accepted if ws else 0),
    )
    out.family(
        "events_sent_total",
        "counter",
        "Events written to clients (WebSocket: every message sent).",
        _per_transport(sse.events, ws.messages_sent if ws else 0),
    )
    out.single(
        "websocket_messages_received_total",
        "counter",
        "Messages received from WebSocket clients.",
        ws.messages_received if ws else 0,
    )
    out.single(
        "events_published_total", "counter", "Events published through the hub.", hub.published
    )
    out.single(
        "events_dropped_total",
        "counter",
        "Events discarded by a subscriber's DROP_OLDEST/DROP_NEWEST policy.",
        hub.dropped,
    )
    out.family(
        "slow_consumers_disconnected_total",
        "counter",
        "Consumers disconnected for falling too far behind (they resume from history).",
        [
            ({"layer": "hub"}, hub.disconnected),
            ({"layer": "websocket"}, ws.slow_consumers if ws else 0),
        ],
    )
    out.family(
        "resumes_total",
        "counter",
        "Reconnections that asked to resume after a last event id, by outcome.",
        [
            ({"transport": "sse", "outcome": "recovered"}, sse.resumes - sse.resets),
            ({"transport": "sse", "outcome": "reset"}, sse.resets),
            ({"transport": "websocket", "outcome": "recovered"}, rooms.resumes - rooms.resets),
            ({"transport": "websocket", "outcome": "reset"}, rooms.resets),
        ],
    )
    out.family(
        "queue_depth",
        "gauge",
        "Events queued for clients now, summed over open connections.",
        [
            ({"queue": "sse"}, sse.queued),
            ({"queue": "websocket_outbound"}, sum(q.depth for q in queues)),
        ],
    )
    out.family(
        "queue_depth_max",
        "gauge",
        "The fullest single client queue now.",
        [
            ({"queue": "sse"}, sse.queued_max),
            ({"queue": "websocket_outbound"}, max((q.depth for q in queues), default=0)),
        ],
    )
    out.single("hub_topics", "gauge", "Topics with local subscribers.", hub.topics)
    out.single("hub_subscribers", "gauge", "Hub subscriptions open now.", hub.subscribers)
    out.single("room_visitors", "gauge", "Visitors in WebSocket rooms now.", rooms.visitors)
    out.single(
        "room_messages_published_total",
        "counter",
        "Messages WebSocket clients published.",
        rooms.published,
    )
    if ws is not None:
        out.family(
            "websocket_rejected_total",
            "counter",
            "WebSocket handshakes refused, by HTTP status.",
            [({"status": str(status)}, count) for status, count in sorted(ws.rejected.items())],
        )
        out.family(
            "websocket_closed_total",
            "counter",
            "WebSocket connections ended, by close code (1006: lost).",
            [({"code": str(code)}, count) for code, count in sorted(ws.closed.items())],
        )
    if snapshot.sse_limits is not None and snapshot.publish_limit is not None:
        limits, rate = snapshot.sse_limits, snapshot.publish_limit
        out.family(
            "requests_refused_total",
            "counter",
            "Requests refused by a limit (server full: 503; per client: 429).",
            [
                ({"limit": "sse_streams", "status": "503"}, limits.rejected_full),
                ({"limit": "sse_streams_per_client", "status": "429"}, limits.rejected_per_client),
                ({"limit": "publish_rate", "status": "429"}, rate.limited),
            ],
        )
        out.single(
            "sse_clients", "gauge", "Client addresses with an SSE stream open.", limits.clients
        )
    answers = snapshot.answers
    out.single(
        "llm_requests_in_flight", "gauge", "LLM endpoint requests running.", answers.in_flight
    )
    out.family(
        "llm_answers_total",
        "counter",
        "LLM answers ended, by status.",
        [({"status": status}, count) for status, count in sorted(answers.answers.items())],
    )
    out.single(
        "llm_tokens_delivered_total",
        "counter",
        "Tokens delivered to clients (stopped answers included).",
        answers.tokens_delivered,
    )
    jobs = snapshot.jobs
    out.single("jobs_running", "gauge", "Jobs running now.", jobs.running)
    out.single("jobs_started_total", "counter", "Jobs started.", jobs.started)
    out.family(
        "jobs_finished_total",
        "counter",
        "Jobs ended, by outcome (cancelled: by a shutdown).",
        [({"outcome": "completed"}, jobs.completed), ({"outcome": "cancelled"}, jobs.cancelled)],
    )
    return out.text()
