"""The sans-IO protocol layer: values, encoders and parsers, no I/O.

Nothing in this package imports trio or a network library (a test checks).
Everything here is synchronous and pure, tested with plain synchronous tests.
"""

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
