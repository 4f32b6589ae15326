"""raise_single: one error out of a helper's nursery as itself, several as the group."""

from __future__ import annotations

import pytest

from trio_stream.testing._groups import raise_single


def test_a_single_error_comes_out_unwrapped() -> None:
    with pytest.raises(KeyError):
        raise_single(ExceptionGroup("g", [KeyError("k")]))


def test_several_errors_keep_the_group() -> None:
    group = ExceptionGroup("g", [KeyError("k"), ValueError("v")])
    with pytest.RaisesGroup(KeyError, ValueError) as caught:
        raise_single(group)
    assert caught.value is group
