"""Brokers: where a Hub's topics live when they must outlive or span processes.

:class:`RedisBroker` keeps topic history in Redis Streams so that any number
of processes share topics and any of them can resume any client (coredis).
"""

from ._errors import BrokerError as BrokerError
from ._errors import BrokerUnavailableError as BrokerUnavailableError
from ._redis import MIN_RETAINED as MIN_RETAINED
from ._redis import RedisBroker as RedisBroker
from ._redis import RedisBrokerStatistics as RedisBrokerStatistics
