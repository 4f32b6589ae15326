"""The streaming core: bounded queues, the Hub (fan-out, history, resume), supervision.

Imports trio and the sans-IO protocol layer only; never a network library.
"""

from ._broker import Broker as Broker
from ._broker import LocalFanout as LocalFanout
from ._errors import BrokerError as BrokerError
from ._errors import BrokerUnavailableError as BrokerUnavailableError
from ._errors import HubClosedError as HubClosedError
from ._errors import InvalidTopicError as InvalidTopicError
from ._errors import ReconnectError as ReconnectError
from ._errors import RetryBudgetExhausted as RetryBudgetExhausted
from ._errors import SubscriberDisconnected as SubscriberDisconnected
from ._hub import Hub as Hub
from ._hub import HubStatistics as HubStatistics
from ._hub import open_hub as open_hub
from ._memory import BrokerStatistics as BrokerStatistics
from ._memory import History as History
from ._memory import MemoryBroker as MemoryBroker
from ._queue import DEFAULT_CAPACITY as DEFAULT_CAPACITY
from ._queue import BoundedQueue as BoundedQueue
from ._queue import Overflow as Overflow
from ._queue import QueueStatistics as QueueStatistics
from ._subscription import Subscription as Subscription
from ._supervision import heartbeat as heartbeat
from ._supervision import reconnect_loop as reconnect_loop
from ._topics import MAX_TOPIC_LENGTH as MAX_TOPIC_LENGTH
from ._topics import validate_topic as validate_topic

__all__ = [
    "DEFAULT_CAPACITY",
    "MAX_TOPIC_LENGTH",
    "BoundedQueue",
    "Broker",
    "BrokerError",
    "BrokerStatistics",
    "BrokerUnavailableError",
    "History",
    "Hub",
    "HubClosedError",
    "HubStatistics",
    "InvalidTopicError",
    "LocalFanout",
    "MemoryBroker",
    "Overflow",
    "QueueStatistics",
    "ReconnectError",
    "RetryBudgetExhausted",
    "SubscriberDisconnected",
    "Subscription",
    "heartbeat",
    "open_hub",
    "reconnect_loop",
    "validate_topic",
]
