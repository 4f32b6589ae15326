import trio_stream


def test_all_is_complete_and_sorted() -> None:
    public = {name for name in dir(trio_stream) if not name.startswith("_")}
    submodules = {
        name
        for name in public
        if type(getattr(trio_stream, name)).__name__ == "module"  # subpackages are not exports
    }
    assert set(trio_stream.__all__) == public - submodules
    assert trio_stream.__all__ == sorted(trio_stream.__all__)


def test_every_export_has_a_docstring() -> None:
    for name in trio_stream.__all__:
        obj = getattr(trio_stream, name)
        assert (obj.__doc__ or "").strip(), f"{name} has no docstring"
