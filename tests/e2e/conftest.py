"""Playwright for Python drives Debian's Chromium against pytest-django's live server.

Each test gets a fresh browser context (no cookies) and saves a screenshot at every step
under test-artifacts/e2e/<test>/; a failing test also leaves `failed.png` and `trace.zip`
(open it with `.venv/bin/playwright show-trace`). Playwright's own browser download does
not work on this machine, so it launches /usr/bin/chromium and needs no `playwright install`.
"""

import itertools
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect, sync_playwright

from tests.conftest import CHROMIUM

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
# Without the networking flags Chromium keeps calling Google's hosts, which this network refuses.
# Playwright gives every launch a new empty profile (user-data-dir) of its own.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Pages come from a local server: anything slower than this is a hang, not a slow machine.
TIMEOUT_MS = 10_000

expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def chromium():
    # Playwright's sync API runs its event loop in this thread, so Django takes every ORM call
    # here (the tests' own and pytest-django's flush) for one from async code and refuses it.
    # Nothing here is async Django code: allow it, for this module only, while the loop runs.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed:
        item.e2e_failed = True
    return report


@pytest.fixture
def artifacts(request) -> Path:
    folder = ARTIFACTS / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def open_page(chromium, live_server, artifacts, request):
    """open_page(locale) is a page of a fresh context whose browser speaks that language
    (Accept-Language) and whose relative URLs go to the live server. On failure each
    leaves its screenshot and trace: `failed.png` and `trace.zip` for the first, then
    `failed-2.png`, `trace-2.zip`…"""
    pages = []

    def open_in(locale: str) -> Page:
        context = chromium.new_context(
            base_url=live_server.url, locale=locale, viewport={"width": 1600, "height": 1000}
        )
        context.set_default_timeout(TIMEOUT_MS)
        context.tracing.start(screenshots=True, snapshots=True)
        pages.append(context.new_page())
        return pages[-1]

    yield open_in
    for number, page in enumerate(pages, start=1):
        suffix = f"-{number}" if number > 1 else ""
        if getattr(request.node, "e2e_failed", False):
            page.screenshot(path=artifacts / f"failed{suffix}.png", full_page=True)
            page.context.tracing.stop(path=artifacts / f"trace{suffix}.zip")
        else:
            page.context.tracing.stop()
        page.context.close()


@pytest.fixture
def page(open_page):
    """A page of a fresh context, in English, whose relative URLs go to the live server."""
    return open_page("en-US")


@pytest.fixture
def shot(page, artifacts):
    """shot("name") saves the page as test-artifacts/e2e/<test>/<NN>-name.png."""
    numbers = itertools.count(1)

    def take(name: str) -> None:
        page.screenshot(path=artifacts / f"{next(numbers):02d}-{name}.png", full_page=True)

    return take


@pytest.fixture
def sign_in(client, live_server):
    """sign_in(page, user) gives the page's browser the session of a forced login of `user`
    (tests/conftest.py's client: verified by its second factor), for tests of what staff
    see once logged in; tests/e2e/test_admin_in_browser.py logs in through the forms."""

    def sign_in_as(page: Page, user) -> None:
        client.force_login(user)
        page.context.add_cookies(
            [
                {
                    "name": settings.SESSION_COOKIE_NAME,
                    "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                    "url": live_server.url,
                }
            ]
        )

    return sign_in_as
