"""The sans-IO protocol layer: values, encoders and parsers, no I/O.

Nothing in this package imports trio or a network library (a test checks).
Everything here is synchronous and pure, tested with plain synchronous tests.
"""

from ._ai_sdk import UI_MESSAGE_STREAM_HEADERS as UI_MESSAGE_STREAM_HEADERS
from ._ai_sdk import UI_PART_TYPES as UI_PART_TYPES
from ._ai_sdk import UIMessageStreamEncoder as UIMessageStreamEncoder
from ._ai_sdk import encode_ui_part as encode_ui_part
from ._ai_sdk import ui_finish_reason as ui_finish_reason
from ._ai_sdk import ui_messages_to_openai as ui_messages_to_openai
from ._backoff import Backoff as Backoff
from ._close_codes import CloseCode as CloseCode
from ._close_codes import should_reconnect as should_reconnect
from ._comments import encode_comment as encode_comment
from ._comments import encode_preamble as encode_preamble
from ._decoder import DEFAULT_MAX_EVENT_SIZE as DEFAULT_MAX_EVENT_SIZE
from ._decoder import DEFAULT_MAX_LINE_LENGTH as DEFAULT_MAX_LINE_LENGTH
from ._decoder import SSEDecoder as SSEDecoder
from ._errors import SSEDecodeError as SSEDecodeError
from ._errors import TrioStreamError as TrioStreamError
from ._event import Event as Event
from ._openai import DONE as DONE
from ._openai import ChatChunkEncoder as ChatChunkEncoder
from ._openai import ChatChunkParser as ChatChunkParser
from ._openai import ChatDelta as ChatDelta
from ._openai import ChunkDecodeError as ChunkDecodeError
from ._openai import ContentDelta as ContentDelta
from ._openai import ErrorDelta as ErrorDelta
from ._openai import FinishDelta as FinishDelta
from ._openai import IncompleteStreamError as IncompleteStreamError
from ._openai import ReasoningDelta as ReasoningDelta
from ._openai import ToolCallDelta as ToolCallDelta
from ._openai import Usage as Usage
from ._openai import coalesce_deltas as coalesce_deltas
