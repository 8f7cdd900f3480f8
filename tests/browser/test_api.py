"""The API in a real browser: the Swagger documentation, and the browsable API."""

import json

import pytest
from playwright.sync_api import expect

from defect.models import Defect
from railfleet.home import SERVICE_NAME
from tests.browser.conftest import log_in_to_admin

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_api_docs_render_the_defects_endpoints_offline(page, external_requests):
    """Swagger UI and its assets come from this server (drf-spectacular-sidecar);
    the `page` fixture fails the test on any request beyond localhost."""
    page.goto("/api/docs")
    paths = page.locator(".opblock-summary-path")
    expect(paths.first).to_be_visible()
    shown = {
        (block.locator(".opblock-summary-method").inner_text(), path)
        for block, path in (
            (page.locator(".opblock").nth(i), paths.nth(i).inner_text())
            for i in range(paths.count())
        )
    }
    assert {m for m, p in shown if p == "/api/defects"} >= {"GET", "POST"}
    assert {m for m, p in shown if p == "/api/defects/{id}"} >= {"GET", "PUT", "PATCH", "DELETE"}
    assert external_requests == []


def test_browsable_api_creates_a_defect_when_logged_in(page, admin_user):
    log_in_to_admin(page)
    page.goto("/api/defects")
    expect(page.locator(".request-info")).to_contain_text("GET")
    content = page.locator("#id__content")
    expect(content).to_be_visible()
    content.fill(json.dumps({"comment": "Horn silent, created in the browser"}))
    page.locator("#post-generic-content-form button", has_text="POST").click()
    expect(page.locator(".response-info")).to_contain_text("201 Created")
    defect = Defect.objects.get()
    assert defect.comment == "Horn silent, created in the browser"
    assert defect.user == admin_user


def test_requests_beyond_localhost_are_caught(page, external_requests):
    """The guard of the `page` fixture works: a request elsewhere is aborted and recorded."""
    page.goto("/health")
    outcome = page.evaluate("fetch('http://example.com/probe').then(() => 'sent', () => 'blocked')")
    assert outcome == "blocked"
    assert external_requests == ["http://example.com/probe"]
    external_requests.clear()  # expected here: do not fail the test on teardown


def test_an_anonymous_browser_logs_in_and_comes_back_to_the_api(page, admin_user):
    """From the landing page's API link: the login page (no native password box), then
    the browsable API, under the service's name."""
    page.goto("/")
    page.click("text=API")
    page.wait_for_url("**/api/auth/login/?next=/api/defects")
    expect(page).to_have_title(f"Log in | {SERVICE_NAME}")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "admin")
    page.click("input[type=submit]")
    page.wait_for_url("**/api/defects")
    expect(page.locator(".response-info")).to_contain_text("200 OK")
    expect(page.locator(".navbar-brand")).to_have_text(SERVICE_NAME)
