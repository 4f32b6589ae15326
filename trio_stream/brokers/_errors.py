"""Errors raised by the brokers (all derive from :class:`TrioStreamError`)."""

from __future__ import annotations

from ..protocol import TrioStreamError

__all__ = ["BrokerError", "BrokerUnavailableError"]


class BrokerError(TrioStreamError):
    """A broker could not do what was asked: base of the broker errors.

    Raised as is when the backend is reachable but refuses the request (a
    wrong password, missing ACL permissions, Redis out of memory...): retrying
    will not help until someone fixes the configuration.
    """


class BrokerUnavailableError(BrokerError):
    """The broker's backend (Redis) cannot be reached right now: nothing was done.

    ``publish`` raises it instead of dropping the event silently; ``subscribe``
    raises it instead of starting a stream that would miss events. Retrying
    later is the right response (an HTTP endpoint answers 503; a client
    reconnects with its last event id and loses nothing once Redis is back).
    """
