"""The page and its assets, served from the package's ``static/`` folder."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from importlib import resources
from typing import Any

from ..sse._asgi import Receive, Scope, Send, send_plain
from ._http import send_bytes

__all__ = ["CONFIG_MARKER", "StaticFiles"]

logger = logging.getLogger("trio_stream.demo")

CONFIG_MARKER = "/*DEMO-CONFIG*/"
"""Where ``index.html`` receives the page's configuration (a JSON object)."""

_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".html": "text/html; charset=utf-8",
}
_ASSET_NAME = re.compile(r"[a-z0-9][a-z0-9_\-]*\.(?:css|js|svg)")
# Only the demo's own files may load or connect; WebSockets go to another port.
_PAGE_HEADERS = [
    (b"cache-control", b"no-cache"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        b"default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
        b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    ),
]


class StaticFiles:
    """Serves ``GET /`` (``index.html`` with ``config`` filled in) and
    ``GET /static/{name}`` (the other files of ``package``'s ``static/`` folder).

    Files are read once, at construction: the set of servable names is fixed
    and nothing on disk is looked up per request. An unknown name gets 404.
    The configuration given to :meth:`configure` (JSON-serialisable) is what
    the page's scripts read from its ``<script type="application/json"
    id="demo-config">`` element.
    """

    def __init__(self, *, package: str = "trio_stream.demo") -> None:
        folder = resources.files(package).joinpath("static")
        self._assets: dict[str, tuple[bytes, str]] = {}
        self._template = ""
        for entry in folder.iterdir() if folder.is_dir() else ():
            if entry.name == "index.html":
                self._template = entry.read_text(encoding="utf-8")
            elif _ASSET_NAME.fullmatch(entry.name):
                suffix = entry.name[entry.name.rindex(".") :]
                self._assets[entry.name] = (entry.read_bytes(), _TYPES[suffix])
        if CONFIG_MARKER not in self._template:
            raise RuntimeError("the demo's index.html is missing or has no config marker")
        self._page: bytes | None = None

    def configure(self, config: Mapping[str, Any]) -> None:
        """Fill the page's configuration in; until then ``GET /`` answers 503."""
        # "<" escaped: the JSON sits inside a <script> element.
        config_json = json.dumps(dict(config), separators=(",", ":")).replace("<", "\\u003c")
        self._page = self._template.replace(CONFIG_MARKER, config_json).encode()

    @property
    def names(self) -> frozenset[str]:
        """The asset names served under ``/static/``."""
        return frozenset(self._assets)

    async def page(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET /``: the page (503 while the server is still starting)."""
        if self._page is None:
            await send_plain(send, 503, "starting")
            return
        await send_bytes(scope, send, 200, self._page, _TYPES[".html"], _PAGE_HEADERS)

    async def asset(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET /static/{name}``: one of the page's scripts, styles or images."""
        found = self._assets.get(scope.get("path_params", {}).get("name", ""))
        if found is None:
            logger.info("404 %s", scope.get("path"))
            await send_plain(send, 404, "not found")
            return
        body, content_type = found
        headers = [(b"cache-control", b"no-cache"), (b"x-content-type-options", b"nosniff")]
        await send_bytes(scope, send, 200, body, content_type, headers)
