"""Every code block in docs/ is a doctest that runs here, a diagram, or an
included example file (which tests/test_examples.py runs)."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).parent.parent / "docs"
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)
SNIPPET = re.compile(r'^--8<-- "(examples/[\w/]+\.py)"$')
PAGES = sorted(DOCS.rglob("*.md"))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_code_blocks_are_tested(page: Path) -> None:
    for language, body in FENCE.findall(page.read_text()):
        if language in {"pycon", "mermaid"}:
            continue
        lines = body.strip().splitlines()
        assert language == "python", f"{page}: untested ```{language} block"
        assert len(lines) == 1, f"{page}: a python block must include an example file"
        match = SNIPPET.match(lines[0])
        assert match, f'{page}: a python block must be --8<-- "examples/..."'
        assert (DOCS.parent / match[1]).is_file(), f"{page}: {match[1]} does not exist"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_doctests_pass(page: Path) -> None:
    result = doctest.testfile(
        str(page), module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False
    )
    assert result.failed == 0


def test_every_public_name_is_in_the_reference() -> None:
    import trio_stream

    reference = "".join(p.read_text() for p in (DOCS / "reference" / "api").glob("*.md"))
    missing = [n for n in trio_stream.__all__ if f"::: trio_stream.{n}\n" not in reference]
    assert not missing, f"not in docs/reference/api/: {missing}"
