"""The admin in a real browser: log in as admin/admin, add a defect, see it owned by admin;
make an API token, see its text once and use it."""

import httpx
import pytest
from playwright.sync_api import expect

from defect.models import Defect
from tests.browser.conftest import log_in_to_admin

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_add_a_defect_in_the_admin(page, admin_user):
    log_in_to_admin(page)
    page.goto("/admin/defect/defect/add/")
    # No user field at all on the add form.
    expect(page.locator("#id_comment")).to_be_visible()
    assert page.locator("[name=user]").count() == 0
    assert page.locator(".field-user").count() == 0
    page.fill("#id_comment", "Pantograph carbon strip worn")
    page.click("input[name=_save]")
    page.wait_for_url("**/admin/defect/defect/")
    row = page.locator("#result_list tbody tr", has_text="Pantograph carbon strip worn")
    expect(row).to_have_count(1)
    expect(row.locator("td.field-user")).to_have_text("admin")
    assert Defect.objects.get().user == admin_user


def test_change_form_shows_the_user_read_only(page, admin_user):
    defect = Defect.objects.create(user=admin_user, comment="Door sensor faulty")
    log_in_to_admin(page)
    page.goto(f"/admin/defect/defect/{defect.pk}/change/")
    expect(page.locator(".field-user .readonly")).to_have_text("admin")
    assert page.locator("[name=user]").count() == 0


def test_create_an_api_token_in_the_admin_and_use_it(page, admin_user, live_server):
    log_in_to_admin(page)
    page.goto("/admin/apitokens/apitoken/add/")
    page.fill("#id_name", "depot tablet 3")
    expect(page.locator("#id_expires_days")).to_have_value("90")
    page.click("input[name=_save]")
    text = page.locator("#api-token-text").inner_text()
    assert text.startswith("rft_")

    answer = httpx.get(
        f"{live_server.url}/api/defects", headers={"Authorization": f"Bearer {text}"}
    )
    assert answer.status_code == 200
    # Back on the list: the token by its name and prefix, never its text again.
    page.click("text=Back to your API tokens")
    row = page.locator("#result_list tbody tr", has_text="depot tablet 3")
    expect(row).to_have_count(1)
    expect(row.locator("td.field-prefix")).to_have_text(text[:8])
    assert text not in page.content()
