"""The web console in a real browser: Debian's Chromium driven by Playwright, against ``live_stack``.

``console_browser`` is one headless Chromium per session (``tests.console.chromium``), with a fresh
profile.
``console_page`` is a new page in a new context (its own session storage) at 1280x800. The console
must have been built (``console/setup.sh``): the control plane serves ``console/dist`` at ``/``.
``assert_accessible(page)`` runs axe-core (from the console's ``node_modules``) in the page and fails
on any critical violation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from imprun.api.routes.console import default_console_dir
from tests.console.chromium import VIEWPORT, launch

AXE = Path(__file__).resolve().parents[2] / "console" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="module")
def console_browser() -> Iterator[Browser]:
    """Playwright's ``launch`` gives the browser a fresh temporary profile (user-data dir).

    Module-scoped: Playwright's sync API keeps an event loop marked running on this thread until it
    stops, and every later test that calls ``asyncio.run`` (the MCP and chat e2e tests) would fail.
    """
    index = default_console_dir() / "index.html"
    assert index.is_file(), f"{index} is missing: build the console with `bash console/setup.sh`"
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture
def console_context(console_browser: Browser) -> Iterator[BrowserContext]:
    context = console_browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(20_000)
    yield context
    context.close()


@pytest.fixture
def console_page(console_context: BrowserContext) -> Page:
    return console_context.new_page()


def assert_accessible(page: Page, screen: str) -> None:
    """No critical axe-core violation on the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # evaluated, not a <script> tag: the console's Content-Security-Policy forbids inline scripts
        page.evaluate(AXE.read_text())
    result: dict[str, Any] = page.evaluate(
        "async () => await window.axe.run(document, {resultTypes: ['violations']})"
    )
    critical = [v for v in result["violations"] if v.get("impact") == "critical"]
    summary = [
        {"id": v["id"], "help": v["help"], "nodes": [n["html"][:160] for n in v["nodes"][:3]]}
        for v in critical
    ]
    assert not critical, f"critical accessibility violations on {screen}: {json.dumps(summary, indent=1)}"
