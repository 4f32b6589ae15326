"""The README's code stays in step with examples/quickstart.py, which the suite runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_readme_code_is_the_tested_quickstart() -> None:
    readme = (ROOT / "README.md").read_text()
    example = {line.strip() for line in (ROOT / "examples/quickstart.py").read_text().splitlines()}
    blocks = re.findall(r"^```python\n(.*?)^```", readme, re.S | re.M)
    assert blocks, "README has no python block"
    for block in blocks:
        missing = [line for line in block.splitlines() if line.strip() not in example]
        assert not missing, f"README lines not in examples/quickstart.py: {missing}"


def test_readme_names_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme
    assert "make test" in readme
