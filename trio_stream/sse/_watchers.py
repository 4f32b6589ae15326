"""What ends a streaming response early: the client's disconnect, the server's shutdown."""

from __future__ import annotations

from weakref import WeakKeyDictionary

import trio

from ._asgi import Receive
from ._writer import Ending

__all__ = ["unwatch_shutdown", "watch_disconnect", "watch_shutdown"]


async def watch_disconnect(
    receive: Receive, cancel_scope: trio.CancelScope, ending: Ending
) -> None:
    """Wait for ``http.disconnect`` and cancel the response at once.

    Hypercorn does not raise on a send after the client went away: this task
    is how a response learns of it. Request body messages are discarded (read
    the body before handing the request to :class:`EventStream`).
    """
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            ending.disconnected = True
            cancel_scope.cancel()
            return


# One watcher task per shutdown event (per ``serve``), not one per response:
# an idle stream then costs a task less. Keyed by event; the trio token tells
# a stale entry left by an earlier ``trio.run`` from a live one.
_on_shutdown: WeakKeyDictionary[
    trio.Event, tuple[trio.lowlevel.TrioToken, dict[trio.CancelScope, Ending]]
] = WeakKeyDictionary()


async def _cancel_on_shutdown(
    shutdown: trio.Event, responses: dict[trio.CancelScope, Ending]
) -> None:
    await shutdown.wait()
    for cancel_scope, ending in list(responses.items()):
        ending.shutdown = True
        cancel_scope.cancel()
        if ending.writer is not None:
            ending.writer.hurry()
    responses.clear()


def watch_shutdown(shutdown: trio.Event, cancel_scope: trio.CancelScope, ending: Ending) -> None:
    """From now on, the server's graceful shutdown ends the response cleanly.

    Sets ``ending.shutdown`` and cancels ``cancel_scope``. All the responses
    of one server share a single (system) task waiting for ``shutdown``.
    Call :func:`unwatch_shutdown` when the response ends.
    """
    token = trio.lowlevel.current_trio_token()
    entry = _on_shutdown.get(shutdown)
    if entry is None or entry[0] is not token:
        entry = _on_shutdown[shutdown] = (token, {})
        trio.lowlevel.spawn_system_task(
            _cancel_on_shutdown, shutdown, entry[1], name="trio_stream shutdown watcher"
        )
    if shutdown.is_set():
        ending.shutdown = True
        cancel_scope.cancel()
    else:
        entry[1][cancel_scope] = ending


def unwatch_shutdown(shutdown: trio.Event, cancel_scope: trio.CancelScope) -> None:
    """Forget a response given to :func:`watch_shutdown` (idempotent)."""
    entry = _on_shutdown.get(shutdown)
    if entry is not None:
        entry[1].pop(cancel_scope, None)
