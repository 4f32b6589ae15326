"""The demo server (``trio-stream demo``, ``make demo``): every part of the library at work.

One process serves a page (live ticker over SSE, chat over WebSockets with
presence, an LLM answer with a Stop button, job progress bars) and the HTTP
surface of DESIGN §11, with embedded defaults: a :class:`MemoryBroker` and the
local token source. :func:`serve_demo` runs it; :class:`DemoConfig` configures it.
"""

from ._answers import Answers as Answers
from ._answers import AnswerStatistics as AnswerStatistics
from ._app import DemoApp as DemoApp
from ._config import DemoConfig as DemoConfig
from ._jobs import Job as Job
from ._jobs import JobRunner as JobRunner
from ._jobs import JobsBusy as JobsBusy
from ._jobs import JobStatistics as JobStatistics
from ._jobs import job_topic as job_topic
from ._metrics import Exposition as Exposition
from ._metrics import MetricsSnapshot as MetricsSnapshot
from ._metrics import render_metrics as render_metrics
from ._rooms import PRESENCE_EVENT as PRESENCE_EVENT
from ._rooms import Rooms as Rooms
from ._rooms import RoomStatistics as RoomStatistics
from ._rooms import RoomVisitor as RoomVisitor
from ._serve import DemoError as DemoError
from ._serve import DemoServer as DemoServer
from ._serve import page_origins as page_origins
from ._serve import serve_demo as serve_demo
from ._static import StaticFiles as StaticFiles
from ._streams import RESET_EVENT as RESET_EVENT
from ._streams import SSEStatistics as SSEStatistics
from ._streams import TopicStreams as TopicStreams
from ._ticker import TICKER_EVENT as TICKER_EVENT
from ._ticker import TICKER_TOPIC as TICKER_TOPIC
from ._ticker import run_ticker as run_ticker

__all__ = [
    "PRESENCE_EVENT",
    "RESET_EVENT",
    "TICKER_EVENT",
    "TICKER_TOPIC",
    "AnswerStatistics",
    "Answers",
    "DemoApp",
    "DemoConfig",
    "DemoError",
    "DemoServer",
    "Exposition",
    "Job",
    "JobRunner",
    "JobStatistics",
    "JobsBusy",
    "MetricsSnapshot",
    "RoomStatistics",
    "RoomVisitor",
    "Rooms",
    "SSEStatistics",
    "StaticFiles",
    "TopicStreams",
    "job_topic",
    "page_origins",
    "render_metrics",
    "run_ticker",
    "serve_demo",
]
