"""The landing page in a real browser: its links lead to the admin and the API docs."""

import re

import pytest
from playwright.sync_api import expect

from railfleet.home import SERVICE_NAME

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_landing_page_leads_to_the_admin_login(page, admin_user):
    page.goto("/")
    expect(page).to_have_title(SERVICE_NAME)
    page.get_by_role("link", name="Admin", exact=True).click()
    expect(page).to_have_url(re.compile(r"/admin/login/\?next=/admin/$"))
    expect(page.locator("#site-name")).to_have_text(SERVICE_NAME)


def test_the_landing_page_leads_to_the_api_documentation(page):
    page.goto("/")
    page.get_by_role("link", name="API documentation").click()
    expect(page).to_have_url(re.compile(r"/api/docs$"))
    expect(page.locator(".swagger-ui .title").first).to_be_visible()
