"""A griffe extension for the docs build: Sphinx roles in docstrings, as Markdown.

trio_stream's docstrings use Sphinx cross-reference roles (``:class:`Hub```,
``:func:`~trio_stream.core.open_hub```), which help() and IDEs show as they
are, but which Markdown would render with the role name in front. This
rewrites them before mkdocstrings renders a docstring:

* a role naming a public name of ``trio_stream`` (its ``__all__``) becomes a
  link to that name's reference entry (``[`Hub`][trio_stream.Hub]``), which
  always resolves because every public name is documented;
* any other role becomes inline code (``~`` keeps the last component only);
* ``:pep:`789``` becomes "PEP 789"; a paragraph ending with the literal-block
  marker ``::`` ends with ``:`` and a line holding only ``::`` goes (the
  indented block below stays a code block).

Only the docs build loads it (mkdocs.yml); the library does not depend on it.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

import trio_stream

_ROLE = re.compile(r":(?:py:)?(class|func|meth|attr|data|exc|obj|const|mod):`(~?)([^`<>]+)`")
_PEP = re.compile(r":pep:`(\d+)`")
_LITERAL_MARKER = re.compile(r"(\S)::$", re.M)
_LONE_MARKER = re.compile(r"^[ \t]*::[ \t]*\n", re.M)
_PUBLIC = frozenset(trio_stream.__all__)


def _replace_role(match: re.Match[str]) -> str:
    short, target = match[2] == "~", match[3].strip()
    display = target.rsplit(".", 1)[-1] if short else target
    name = target.rsplit(".", 1)[-1]
    module = target.rsplit(".", 1)[0] if "." in target else ""
    # Link only a public name itself: trio_stream.X or trio_stream.<sub>.X.
    if name in _PUBLIC and (module == "" or module.startswith("trio_stream")):
        return f"[`{display}`][trio_stream.{name}]"
    return f"`{display}`"


def convert(text: str) -> str:
    """``text`` with Sphinx roles and literal-block markers rewritten for Markdown."""
    text = _ROLE.sub(_replace_role, text)
    text = _PEP.sub(r"PEP \1", text)
    text = _LONE_MARKER.sub("", text)
    return _LITERAL_MARKER.sub(r"\1:", text)


class SphinxRoles(griffe.Extension):
    """Rewrite every loaded docstring once the object tree is complete."""

    def on_object(self, *, obj: griffe.Object, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)
