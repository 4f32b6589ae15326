"""Letting a test's own exception out of a helper's nursery unwrapped."""

from __future__ import annotations

from typing import NoReturn

from ..core._groups import collapse_group

__all__ = ["raise_single"]


def raise_single(group: BaseExceptionGroup[BaseException]) -> NoReturn:
    """Raise the one exception ``group`` stands for (its traceback kept), else the group.

    The test helpers' nurseries wrap whatever the test body raises (an
    ``AssertionError``, say) in an ExceptionGroup; tests read better, and
    ``pytest.raises`` works, when it comes out as itself.
    """
    single = collapse_group(group)
    if single is None:
        raise group
    raise single from None
