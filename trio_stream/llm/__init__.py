"""LLM token streaming: an OpenAI-compatible upstream client, an embedded local token
source, and relays to the browser (OpenAI chunks or the AI SDK UI message stream)."""

from ._detach import DetachedGeneration as DetachedGeneration
from ._detach import DetachedGenerations as DetachedGenerations
from ._detach import GenerationsBusy as GenerationsBusy
from ._endpoints import ANSWER_ID_HEADER as ANSWER_ID_HEADER
from ._endpoints import ChatRelay as ChatRelay
from ._endpoints import Policy as Policy
from ._errors import UpstreamConnectionError as UpstreamConnectionError
from ._errors import UpstreamError as UpstreamError
from ._errors import UpstreamHTTPError as UpstreamHTTPError
from ._errors import UpstreamProtocolError as UpstreamProtocolError
from ._errors import UpstreamStreamError as UpstreamStreamError
from ._local import LocalTokenSource as LocalTokenSource
from ._relay import DEFAULT_ERROR_MESSAGE as DEFAULT_ERROR_MESSAGE
from ._stream import DEFAULT_STREAM_CAPACITY as DEFAULT_STREAM_CAPACITY
from ._stream import ChatStream as ChatStream
from ._stream import ChatUpstream as ChatUpstream
from ._stream import GenerationResult as GenerationResult
from ._stream import GenerationStatus as GenerationStatus
from ._stream import open_delta_stream as open_delta_stream
from ._upstream import OpenAIUpstream as OpenAIUpstream
