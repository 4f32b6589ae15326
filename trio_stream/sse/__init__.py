"""Server-Sent Events over HTTP: the ASGI server side on Hypercorn, and the httpx client.

Server names come from ``_serve``, ``_response``, ``_router``, ``_endpoint``
(``_compress``, ``_request``); the client's from ``_client`` (added below by
its author).
"""

from ._compress import SyncFlushGzip as SyncFlushGzip
from ._endpoint import hub_endpoint as hub_endpoint
from ._feeds import Producer as Producer
from ._feeds import StreamSource as StreamSource
from ._request import MAX_LAST_EVENT_ID_LENGTH as MAX_LAST_EVENT_ID_LENGTH
from ._request import RequestRejected as RequestRejected
from ._request import last_event_id_from as last_event_id_from
from ._response import DEFAULT_ERROR_EVENT as DEFAULT_ERROR_EVENT
from ._response import EventStream as EventStream
from ._response import StreamStatistics as StreamStatistics
from ._response import sse_response as sse_response
from ._router import Route as Route
from ._router import Router as Router
from ._serve import ServeError as ServeError
from ._serve import current_shutdown_event as current_shutdown_event
from ._serve import serve as serve

# --- client (trio_stream/sse/_client.py) ---
# isort: split
from ._client import EventSource as EventSource
from ._client import EventSourceStatistics as EventSourceStatistics
from ._client import open_event_source as open_event_source
from ._client_errors import SSEClientError as SSEClientError
from ._client_errors import SSEResponseError as SSEResponseError
from ._client_errors import SSERetriesExhaustedError as SSERetriesExhaustedError
from ._client_errors import SSEServerError as SSEServerError
from ._client_errors import SSEStreamEndedError as SSEStreamEndedError

# --- exports: raw bytes, NDJSON, CSV, files (trio_stream/sse/_export*.py) ---
# isort: split
from ._export import ExportProducer as ExportProducer
from ._export import ExportSource as ExportSource
from ._export import ExportStatistics as ExportStatistics
from ._export import StreamingResponse as StreamingResponse
from ._export import encode_chunk as encode_chunk
from ._export_formats import csv_response as csv_response
from ._export_formats import file_response as file_response
from ._export_formats import ndjson_response as ndjson_response

# --- several topics on one SSE connection (trio_stream/sse/_multi*.py) ---
# isort: split
from ._endpoint import hub_topics_endpoint as hub_topics_endpoint
from ._multi import DEFAULT_MAX_TOPICS as DEFAULT_MAX_TOPICS
from ._multi import TOPIC_RESET_EVENT as TOPIC_RESET_EVENT
from ._multi_ids import TopicsEventId as TopicsEventId
from ._multi_ids import max_topics_event_id_length as max_topics_event_id_length

# --- limits, rate limits, CORS, stream lifetime (trio_stream/sse/_limits.py ...) ---
# isort: split
from ._cors import CORS as CORS
from ._cors import DEFAULT_CORS_HEADERS as DEFAULT_CORS_HEADERS
from ._cors import DEFAULT_CORS_MAX_AGE as DEFAULT_CORS_MAX_AGE
from ._cors import CORSStatistics as CORSStatistics
from ._direct import HeaderSend as HeaderSend
from ._lifetime import DEFAULT_LIFETIME_JITTER as DEFAULT_LIFETIME_JITTER
from ._limits import DEFAULT_LIMIT_RETRY_AFTER as DEFAULT_LIMIT_RETRY_AFTER
from ._limits import DEFAULT_MAX_STREAMS as DEFAULT_MAX_STREAMS
from ._limits import DEFAULT_MAX_STREAMS_PER_CLIENT as DEFAULT_MAX_STREAMS_PER_CLIENT
from ._limits import ClientKey as ClientKey
from ._limits import ConnectionLimits as ConnectionLimits
from ._limits import ConnectionLimitStatistics as ConnectionLimitStatistics
from ._limits import client_address as client_address
from ._ratelimit import DEFAULT_RATE_LIMIT as DEFAULT_RATE_LIMIT
from ._ratelimit import DEFAULT_RATE_LIMIT_BURST as DEFAULT_RATE_LIMIT_BURST
from ._ratelimit import DEFAULT_RATE_LIMIT_KEYS as DEFAULT_RATE_LIMIT_KEYS
from ._ratelimit import RateLimit as RateLimit
from ._ratelimit import RateLimitStatistics as RateLimitStatistics

# --- authentication (trio_stream/sse/_auth.py) ---
# isort: split
from ._auth import Authenticated as Authenticated
from ._auth import AuthenticationStatistics as AuthenticationStatistics
