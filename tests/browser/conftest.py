"""A real Chromium for page tests: Debian's ``/usr/bin/chromium`` driven by Playwright.

Playwright's sync API runs on a thread of its own, so one browser serves the whole
session while each test keeps its own event loop for the servers it starts. A test's
script works in :func:`watched_page`: a fresh context, a picture when it fails, and a
failure for anything the page showed broken. Without Chromium (``make test`` installs it
where apt-get can) the browser tests are skipped, saying why.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Error,
    Page,
    Playwright,
    Response,
    ViewportSize,
    sync_playwright,
)

# The chat rig's fixtures, for pages that need the gateway and a worker behind them.
from tests.chat.conftest import chat, chat_settings, sms_settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LAPTOP: ViewportSize = {"width": 1366, "height": 768}

T = TypeVar("T")

__all__ = [
    "CHROMIUM",
    "LAPTOP",
    "BrowserThread",
    "browser",
    "chat",
    "chat_settings",
    "sms_settings",
    "watch",
    "watched_page",
]


def watch(page: Page, *, locations: bool = False) -> list[str]:
    """Collect what a person would count as broken on ``page``: script errors, console
    errors and warnings, answers of 400 and over. A test asserts the list stays empty."""
    problems: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            where = f" ({message.location})" if locations else ""
            problems.append(f"console {message.type}: {message.text}{where}")

    def response(answer: Response) -> None:
        if answer.status >= 400:
            problems.append(f"HTTP {answer.status} for {answer.request.method} {answer.url}")

    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", console)
    page.on("response", response)
    return problems


@contextmanager
def watched_page(
    browser: Browser,
    screenshots: Path | None = None,
    *,
    viewport: ViewportSize | None = LAPTOP,
    timeout_ms: float | None = None,
    locations: bool = False,
) -> Iterator[Page]:
    """A page of a fresh Vietnamese context (closed after the block) at ``viewport``
    (None: Playwright's default). A Playwright error or a failed assertion in the block
    leaves ``failure.png`` in ``screenshots`` (the test's tmp_path), if given; a block
    that went through still fails on anything :func:`watch` collected."""
    context = browser.new_context(locale="vi-VN", viewport=viewport)
    if timeout_ms is not None:
        context.set_default_timeout(timeout_ms)
    page = context.new_page()
    problems = watch(page, locations=locations)
    try:
        yield page
    except (Error, AssertionError):
        if screenshots is not None:
            page.screenshot(path=screenshots / "failure.png", full_page=True)
        raise
    finally:
        context.close()
    assert not problems, problems


class BrowserThread:
    """One headless Chromium, owned by one thread; tests hand it functions to run."""

    def __init__(self, executable: Path) -> None:
        self._executable = executable
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="playwright")
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None

    def start(self) -> None:
        self._thread.submit(self._launch).result(timeout=60)

    def _launch(self) -> None:
        self._playwright = sync_playwright().start()
        self._browser = self._playwright.chromium.launch(
            executable_path=str(self._executable), args=CHROMIUM_ARGS, headless=True
        )

    async def run(self, script: Callable[[Browser], T]) -> T:
        """Run ``script(browser)`` on the browser's thread; the caller's loop keeps serving."""
        assert self._browser is not None, "the browser was not started"
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, script, self._browser)

    def close(self) -> None:
        def stop() -> None:
            if self._browser is not None:
                self._browser.close()
            if self._playwright is not None:
                self._playwright.stop()

        try:
            self._thread.submit(stop).result(timeout=30)
        finally:
            self._thread.shutdown(wait=True)


@pytest.fixture(scope="session")
def browser() -> Iterator[BrowserThread]:
    """A headless system Chromium for the session, or a skip that says what is missing."""
    executable = CHROMIUM if CHROMIUM.exists() else None
    if executable is None:
        found = shutil.which("chromium")
        executable = Path(found) if found else None
    if executable is None:
        pytest.skip(
            f"browser tests skipped: no Chromium at {CHROMIUM} (apt-get install chromium; "
            "`make test` does it where apt-get is available)"
        )
    thread = BrowserThread(executable)
    try:
        thread.start()
        yield thread
    finally:
        thread.close()
