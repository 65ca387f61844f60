"""The console in a real browser: Debian's Chromium driven by Playwright, against local mode.

One local-mode process and one browser per module; each test gets a fresh browser context (its
own sessionStorage), so tests never share a signed-in session. Every page fails its test on a
script error or a Content-Security-Policy violation. Screenshots go to build/screenshots/.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import REPO, LocalMode, start_local_mode

CHROMIUM = os.environ.get("COEXIST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = REPO / "build" / "screenshots"
# Short workflow timeouts with room for a loaded machine (as tests/e2e/test_conversations.py).
FAST = {"takeover_cool_down_s": 8, "accept_timeout_s": 20, "assign_retry_s": 1, "max_assign_attempts": 2, "survey_timeout_s": 60}


@pytest.fixture(scope="module")
def local() -> Iterator[LocalMode]:
    with start_local_mode({"COEXIST_CONVERSATION": json.dumps(FAST)}) as running:
        try:
            yield running
        finally:
            # Kept beside the screenshots: what the server said while the browser was looking.
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            (SCREENSHOTS / "local-mode.log").write_text(running.output())


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not at {CHROMIUM}: `make test` installs it (apt-get install chromium), or set COEXIST_CHROMIUM")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


def open_page(browser, local: LocalMode, locale: str = "en-US"):
    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 820}, base_url=local.http)
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" and "Content Security Policy" in message.text else None)
    page.problems = problems
    return page


@pytest.fixture
def page(browser, local):
    page = open_page(browser, local)
    yield page
    problems = page.problems
    page.context.close()
    assert problems == []


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def assert_accessible(page, screen: str) -> None:
    """axe-core on the page as it is now: no serious or critical violation."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]
    assert bad == [], f"{screen}: " + "; ".join(f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}" for v in bad)
