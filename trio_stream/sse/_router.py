"""A tiny ASGI router for the library's own examples: path parameters, methods, 404/405."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable

from ._asgi import ASGIApp, Receive, Scope, Send, handle_lifespan, send_plain

__all__ = ["Route", "Router"]

logger = logging.getLogger("trio_stream.sse")

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Route:
    """``path`` (``/sse/{topic}``: a parameter matches one non-empty segment) to ``app``.

    ``methods`` it answers (``GET`` implies ``HEAD``). The app gets the
    parameters, already percent-decoded, in ``scope["path_params"]``.
    """

    __slots__ = ("_regex", "app", "methods", "path")

    def __init__(self, path: str, app: ASGIApp, *, methods: Iterable[str] = ("GET",)) -> None:
        if not path.startswith("/"):
            raise ValueError("a route path starts with '/'")
        self.path = path
        self.app = app
        upper = {method.upper() for method in methods}
        self.methods = frozenset(upper | {"HEAD"} if "GET" in upper else upper)
        pattern, position = "", 0
        for param in _PARAM.finditer(path):
            pattern += re.escape(path[position : param.start()]) + f"(?P<{param[1]}>[^/]+)"
            position = param.end()
        self._regex = re.compile(pattern + re.escape(path[position:]))

    def match(self, path: str) -> dict[str, str] | None:
        """The path parameters if ``path`` matches this route, else None."""
        found = self._regex.fullmatch(path)
        return None if found is None else found.groupdict()


class Router:
    """An ASGI app dispatching ``http`` requests to the first matching :class:`Route`.

    No route matches the path: 404; a route matches but not the method: 405
    with ``Allow``. ``lifespan`` events go to the ``lifespan`` app when given,
    else are acknowledged. Other scope types (``websocket``) are routed by
    path only. Kept tiny on purpose: mount the library's endpoints in your
    framework's router for anything more.
    """

    def __init__(self, routes: Iterable[Route] = (), *, lifespan: ASGIApp | None = None) -> None:
        self.routes = list(routes)
        self._lifespan = lifespan

    def add(self, path: str, app: ASGIApp, *, methods: Iterable[str] = ("GET",)) -> None:
        """Append a :class:`Route`."""
        self.routes.append(Route(path, app, methods=methods))

    def route(
        self, path: str, *, methods: Iterable[str] = ("GET",)
    ) -> Callable[[ASGIApp], ASGIApp]:
        """Decorator form of :meth:`add`; returns the app unchanged."""

        def register(app: ASGIApp) -> ASGIApp:
            self.add(path, app, methods=methods)
            return app

        return register

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch one ASGI call."""
        if scope["type"] == "lifespan":
            if self._lifespan is not None:
                await self._lifespan(scope, receive, send)
            else:
                await handle_lifespan(receive, send)
            return
        allowed: set[str] = set()
        for route in self.routes:
            params = route.match(scope["path"])
            if params is None:
                continue
            if scope["type"] == "http" and scope["method"] not in route.methods:
                allowed |= route.methods
                continue
            await route.app({**scope, "path_params": params}, receive, send)
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1000})
            return
        if allowed:
            logger.info("405 %s %s", scope["method"], scope["path"])
            allow = ", ".join(sorted(allowed)).encode()
            await send_plain(send, 405, "method not allowed", headers=[(b"allow", allow)])
        else:
            logger.info("404 %s %s", scope["method"], scope["path"])
            await send_plain(send, 404, "not found")
