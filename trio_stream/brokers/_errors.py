"""The broker errors, defined in the core (any broker can be unavailable).

Re-exported here so that ``from trio_stream.brokers import BrokerError`` keeps
working: these are the same class objects as ``trio_stream.core``'s.
"""

from __future__ import annotations

from ..core._errors import BrokerError as BrokerError
from ..core._errors import BrokerUnavailableError as BrokerUnavailableError

__all__ = ["BrokerError", "BrokerUnavailableError"]
