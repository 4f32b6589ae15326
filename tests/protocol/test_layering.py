"""The protocol layer is sans-IO: it imports the standard library and itself, nothing else."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import trio_stream.protocol

PACKAGE = Path(trio_stream.protocol.__file__).parent


def _imports(path: Path) -> list[tuple[int, str]]:
    """(relative level, module) for every import statement in a module, nested ones included."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(0, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


def test_protocol_modules_exist() -> None:
    names = {path.name for path in PACKAGE.glob("*.py")}
    assert {"__init__.py", "_decoder.py", "_event.py", "_backoff.py"} <= names


def test_protocol_imports_only_the_standard_library() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for level, module in _imports(path):
            if level == 1:
                continue  # a sibling module of the package itself
            if level > 1:
                offenders.append(
                    f"{path.name}: reaches out of the package ({'.' * level}{module})"
                )
            elif module.partition(".")[0] not in sys.stdlib_module_names:
                offenders.append(f"{path.name}: imports {module}")
    assert offenders == []


def test_the_scan_sees_third_party_imports(tmp_path: Path) -> None:
    """The checker itself flags what it must (trio, httpx, and climbing out with '..')."""
    module = tmp_path / "m.py"
    module.write_text("import trio\nfrom httpx import Client\nfrom .. import core\nimport os\n")
    assert _imports(module) == [(0, "trio"), (0, "httpx"), (2, ""), (0, "os")]
