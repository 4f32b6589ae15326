"""Errors raised by the streaming core (all derive from :class:`TrioStreamError`)."""

from __future__ import annotations

import trio

from ..protocol import TrioStreamError

__all__ = [
    "BrokerError",
    "BrokerUnavailableError",
    "HubClosedError",
    "InvalidTopicError",
    "ReconnectError",
    "RetryBudgetExhausted",
    "SubscriberDisconnected",
]


class InvalidTopicError(TrioStreamError, ValueError):
    """A topic name is empty, too long, or uses characters outside the allowed set.

    Also a :class:`ValueError`, so code that validates input generically catches it.
    """


class SubscriberDisconnected(TrioStreamError):
    """The subscriber fell ``capacity`` events behind and was detached (``Overflow.DISCONNECT``).

    Raised by the next receive on its queue. The events it had queued were
    released when it was detached; a client recovers them by resubscribing with
    the id of the last event it received (history replays what it missed).
    Adapters map it to "end this stream, let the client reconnect".
    """


class HubClosedError(TrioStreamError, trio.ClosedResourceError):
    """The :class:`Hub` was closed: it accepts no new publish or subscribe.

    Also a :class:`trio.ClosedResourceError`, as trio's own closed objects raise.
    """


class ReconnectError(TrioStreamError):
    """A :func:`reconnect_loop` stopped for good (base of its errors).

    Raised directly, ``from`` the exception group, when a session failed with
    several errors at once and the loop will not retry them.
    """


class RetryBudgetExhausted(ReconnectError):
    """A :func:`reconnect_loop` gave up: its retry budget ran out.

    Raised ``from`` the last session error. ``attempts`` is the number of
    consecutive sessions that failed before one got going.
    """

    def __init__(self, message: str, *, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


class BrokerError(TrioStreamError):
    """A broker could not do what was asked: base of the broker errors.

    Raised as is when the backend is reachable but refuses the request (a
    wrong password, missing ACL permissions, Redis out of memory...): retrying
    will not help until someone fixes the configuration.
    """


class BrokerUnavailableError(BrokerError):
    """The broker's backend (e.g. Redis) cannot be reached right now: nothing was done.

    ``publish`` raises it instead of dropping the event silently; ``subscribe``
    raises it instead of starting a stream that would miss events. Retrying
    later is the right response (an HTTP endpoint answers 503 with
    ``Retry-After``; a client reconnects with its last event id and loses
    nothing once the backend is back).
    """
