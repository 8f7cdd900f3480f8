"""Real-browser fixtures: Debian's chromium driven by Playwright, against live_server.

The browser is /usr/bin/chromium (`apt-get install chromium`; `make test` and
.ci/run install it). It is never downloaded, and a missing browser fails the
tests: it is an installation error, not a reason to skip. Every request the
page makes to a host other than the live server is aborted and recorded, and
a test that made one fails.
"""

import os
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.contrib.auth import get_user_model

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}


@pytest.fixture(scope="module")
def browser():
    """One chromium per test module.

    Playwright's sync API keeps an event loop running in this thread while the
    browser lives. Module scope ends it with the module (pytest-randomly never
    mixes modules), so the rest of the suite may use asyncio.run(); meanwhile
    Django's ORM is told that running next to that loop is safe, which it is
    here: every call is synchronous.
    """
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium); "
            "`make test` does it when run as root."
        )
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )
            yield browser
            browser.close()
    finally:
        if previous is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def external_requests():
    """URLs the page tried to reach outside the live server (all aborted)."""
    return []


@pytest.fixture
def page(browser, live_server, external_requests):
    context = browser.new_context(base_url=live_server.url)

    def local_only(route):
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlparse(url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            external_requests.append(url)
            route.abort()

    context.route("**/*", local_only)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()
    assert external_requests == [], f"requests beyond localhost: {external_requests}"


@pytest.fixture
def admin_user(transactional_db):
    """The development superuser, admin / admin."""
    return get_user_model().objects.create_superuser("admin", "admin@example.com", "admin")


def log_in_to_admin(page, username: str = "admin", password: str = "admin") -> None:  # noqa: S107
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
