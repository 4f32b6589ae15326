"""Turning an internal nursery's ExceptionGroup into one exception for the user."""

from __future__ import annotations

from typing import NoReturn

import trio

__all__ = ["collapse_group", "reraise"]


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    leaves: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            leaves.extend(_leaves(exc))
        else:
            leaves.append(exc)
    return leaves


def collapse_group(
    group: BaseExceptionGroup[BaseException],
    consequence: type[Exception] | tuple[type[Exception], ...] = (),
) -> BaseException | None:
    """The single exception to raise in place of ``group``, or None if there is none.

    An exception that must propagate untouched (``KeyboardInterrupt``,
    ``SystemExit``...) wins; then the only non-``Cancelled`` error (its
    ``Cancelled`` siblings were collateral damage of it); then a lone
    ``Cancelled``. Errors of a ``consequence`` type (say, "the connection is
    closed" raised in a task because another task's failure closed it) are
    dropped when another error explains them. With several real errors it
    returns None: the caller raises its own typed error ``from`` the group.
    """
    leaves = _leaves(group)
    for leaf in leaves:
        if not isinstance(leaf, Exception | trio.Cancelled):
            return leaf
    errors = [leaf for leaf in leaves if not isinstance(leaf, trio.Cancelled)]
    causes = [error for error in errors if not isinstance(error, consequence)]
    if causes and len(causes) < len(errors):
        errors = causes
    if len(errors) == 1:
        return errors[0]
    if not errors:
        return leaves[0]
    return None


def reraise(exc: BaseException) -> NoReturn:
    """Raise ``exc`` (a leaf taken out of a group) keeping its own ``__context__``."""
    context = exc.__context__
    try:
        raise exc
    finally:
        exc.__context__ = context
        del exc, context
