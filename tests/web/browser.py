"""Helpers for the browser tests: Chromium, screenshots, page checks and common steps.

The tests drive Debian's Chromium (``/usr/bin/chromium``, installed by CI; browsers are never
downloaded) through Playwright's sync API against the real web app on 127.0.0.1.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from playwright.sync_api import Page, expect

from sophsync.core.accounts import TransactionView
from sophsync.jobs import Worker
from sophsync.web.pages import format_money
from tests.web.conftest import WebServer

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
#: Milliseconds to wait for what the connect dialog's polling (every 1.5 s) brings.
SLOW = 20_000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: Every visible form control without an accessible label (by <label>, aria-label or
#: aria-labelledby), as HTML.
_UNLABELLED = """() => Array.from(document.querySelectorAll("input, select, textarea"))
  .filter((el) => el.type !== "hidden" && el.checkVisibility())
  .filter((el) => {
    const byLabel = Array.from(el.labels || []).some((l) => l.textContent.trim() !== "");
    const byAria = (el.getAttribute("aria-label") || "").trim() !== "";
    return !byLabel && !byAria && !el.getAttribute("aria-labelledby");
  })
  .map((el) => el.outerHTML)"""


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


class Snap:
    """Checks the page a test is on and saves a full-page screenshot of it, named
    ``{test}__{step}.png``."""

    def __init__(self, test_name: str) -> None:
        self.prefix = slug(test_name.removeprefix("test_"))
        self.readme: dict[str, str] = {}
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def for_readme(self, step: str, name: str) -> None:
        """Also save ``step`` as ``name``, viewport-sized (1200x800), for the README."""
        self.readme[step] = name

    def __call__(self, page: Page, step: str) -> None:
        check_page(page)
        page.screenshot(path=SCREENSHOTS / f"{self.prefix}__{slug(step)}.png", full_page=True)
        if step in self.readme:
            assert page.viewport_size == {"width": 1200, "height": 800}
            page.screenshot(path=SCREENSHOTS / self.readme[step])


def check_page(page: Page) -> None:
    """Accessibility basics of every page: labelled form controls and the favicon link."""
    unlabelled = page.evaluate(_UNLABELLED)
    assert unlabelled == [], f"form controls without a label on {page.url}: {unlabelled}"
    expect(page.locator('link[rel="icon"]')).to_have_attribute("href", "/static/favicon.svg")


def assert_fits_width(page: Page, width: int) -> None:
    """Nothing on the page is wider than the screen (no horizontal scrolling)."""
    sizes = page.evaluate(
        """() => ({inner: window.innerWidth,
                   document: document.documentElement.scrollWidth,
                   body: document.body.scrollWidth})"""
    )
    assert sizes["inner"] == width, sizes
    assert sizes["document"] <= sizes["inner"], f"{page.url} overflows horizontally: {sizes}"
    assert sizes["body"] <= sizes["inner"], f"{page.url} overflows horizontally: {sizes}"


def run_jobs(server: WebServer) -> None:
    """Run every due job (syncs) on this thread, as the worker would, until none is left."""
    Worker(server.core, server.queue).run_until_idle()
    assert server.queue.pending() == 0, "a job is still waiting (retried or stuck)"


def log_in(page: Page, email: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()


def csrf_token(page: Page) -> str:
    """The session's CSRF token, as every form of the page carries it."""
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    assert token
    return token


def money(row: TransactionView) -> str:
    return format_money(row.amount_minor, row.currency)


def expect_transactions(page: Page, rows: Sequence[TransactionView]) -> None:
    """The transactions table shows exactly ``rows``, in order (dates and amounts)."""
    assert rows, "compare with a non-empty list: an empty one proves little"
    table = page.locator("#transactions tbody")
    expect(table.locator("td.num")).to_have_text([money(row) for row in rows])
    expect(table.locator("td:first-child")).to_have_text([row.date.isoformat() for row in rows])
