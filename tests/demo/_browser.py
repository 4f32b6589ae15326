"""Chromium through Playwright's sync API, driven from trio tests.

Playwright's sync API is built on asyncio and greenlets, and its objects belong
to the thread that made them. So one dedicated thread (:class:`BrowserThread`)
owns Playwright and the browser, and runs every call for the tests, one at a
time; a trio test awaits each call without blocking its event loop, so the demo
server it runs keeps serving while the browser works. :class:`RemotePage` wraps
a page so that tests read like ``await page.click("#job-start")``.

Playwright's own timeouts (the context default, :data:`STEP_TIMEOUT_MS`) bound
every step: a page that never reaches a state fails the test, it never hangs.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import queue
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import trio
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

T = TypeVar("T")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STEP_TIMEOUT_MS = 20_000
"""The longest any one browser step may take (a safety bound, not an expectation)."""


class BrowserThread:
    """A Chromium browser owned by one thread; :meth:`call` runs a function there."""

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self._jobs: queue.SimpleQueue[
            tuple[Callable[[], Any], concurrent.futures.Future[Any]] | None
        ]
        self._jobs = queue.SimpleQueue()
        self._ready: concurrent.futures.Future[Browser] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._main, name="playwright", daemon=True)
        self.browser: Browser | None = None

    def start(self) -> None:
        """Start the thread and launch Chromium (blocking; raises if the launch fails)."""
        self._thread.start()
        self.browser = self._ready.result(timeout=120)

    def stop(self) -> None:
        """Close the browser and end the thread (blocking)."""
        self._jobs.put(None)
        self._thread.join(timeout=60)

    def _main(self) -> None:
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=self.executable, headless=True, args=CHROMIUM_ARGS
                )
                self._ready.set_result(browser)
                while (job := self._jobs.get()) is not None:
                    function, future = job
                    try:
                        future.set_result(function())
                    except Exception as exc:  # handed to the awaiting test
                        future.set_exception(exc)
                browser.close()
        except Exception as exc:  # a failed launch: start() raises it
            if not self._ready.done():
                self._ready.set_exception(exc)

    async def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``function(*args, **kwargs)`` on the browser thread; return its result."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()

        def wake(_: object) -> None:
            with contextlib.suppress(trio.RunFinishedError):  # the test is gone
                token.run_sync_soon(done.set)

        future.add_done_callback(wake)
        self._jobs.put((partial(function, *args, **kwargs), future))
        await done.wait()
        return future.result()

    async def open_page(
        self, url: str, *, csp: bool = False, color_scheme: str = "light"
    ) -> RemotePage:
        """A new browser context (own cookies, storage, connections) showing ``url``.

        Tests read the page's state with JavaScript expressions, which its
        Content-Security-Policy forbids; ``csp=True`` keeps the policy (then
        only selectors can be used).
        """

        def open_() -> RemotePage:
            assert self.browser is not None
            context = self.browser.new_context(
                viewport={"width": 1280, "height": 900},
                color_scheme=color_scheme,  # type: ignore[arg-type]
                bypass_csp=not csp,
            )
            context.set_default_timeout(STEP_TIMEOUT_MS)
            page = context.new_page()
            remote = RemotePage(self, context, page)
            page.on("pageerror", lambda error: remote.errors.append(str(error)))
            page.on("console", remote._console)
            page.goto(url)
            return remote

        return await self.call(open_)


class RemotePage:
    """A page living on the :class:`BrowserThread`, driven from trio.

    ``errors`` collects uncaught page exceptions; ``console_errors`` the
    console's error lines (a refused connection during a restart logs one).
    """

    def __init__(self, thread: BrowserThread, context: BrowserContext, page: Page) -> None:
        self.thread = thread
        self.context = context
        self.page = page
        self.errors: list[str] = []
        self.console_errors: list[str] = []

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    async def wait_for(self, expression: str, arg: Any = None) -> Any:
        """Wait until the JavaScript ``expression`` (a function of ``arg``) is truthy."""
        handle = await self.thread.call(self.page.wait_for_function, expression, arg=arg)
        return await self.thread.call(handle.json_value)

    async def wait_for_selector(self, selector: str) -> None:
        """Wait until ``selector`` matches a visible element (works under the page's CSP)."""
        await self.thread.call(self.page.wait_for_selector, selector)

    async def evaluate(self, expression: str, arg: Any = None) -> Any:
        """The value of the JavaScript ``expression`` (a function of ``arg``)."""
        return await self.thread.call(self.page.evaluate, expression, arg)

    async def click(self, selector: str) -> None:
        """Click the element matching ``selector``."""
        await self.thread.call(self.page.click, selector)

    async def fill(self, selector: str, text: str) -> None:
        """Type ``text`` into the input matching ``selector``."""
        await self.thread.call(self.page.fill, selector, text)

    async def text(self, selector: str) -> str:
        """The text content of the element matching ``selector``."""
        return await self.thread.call(self.page.inner_text, selector)

    async def screenshot(self, path: Path) -> None:
        """Save a full-page PNG screenshot at ``path``."""
        await self.thread.call(self.page.screenshot, path=str(path), full_page=True)

    async def close(self) -> None:
        """Close the page's browser context (its connections close with it)."""
        await self.thread.call(self.context.close)
