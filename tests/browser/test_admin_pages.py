"""The admin's pages at 1280 x 900, as a person checks them: the order of the index, the
titles, and lists whose every column header and time fits, on one line, in the screen."""

import re

import pytest
from playwright.sync_api import expect

from broadcast.models import Event, Status
from defect.services import defect_create
from tests.browser.conftest import log_in_to_admin
from tests.helpers import counter_deliveries

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTH, HEIGHT = 1280, 900
TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")

# For each header cell and each cell given: its text, whether its content is
# wider than the cell (cut off), how many lines its text takes, and whether it
# ends inside the window.
CELLS_JS = """(selector) => [...document.querySelectorAll(selector)].map(cell => {
    const tops = new Set();
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
        if (!walker.currentNode.textContent.trim()) continue;
        const range = document.createRange();
        range.selectNodeContents(walker.currentNode);
        for (const rect of range.getClientRects()) tops.add(Math.round(rect.top));
    }
    return {
        text: cell.innerText.trim(),
        cut: cell.scrollWidth > cell.clientWidth,
        lines: tops.size,
        inside: cell.getBoundingClientRect().right <= document.documentElement.clientWidth,
    };
})"""


@pytest.fixture
def admin_page(page, admin_user):
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    log_in_to_admin(page)
    return page


@pytest.fixture
def events(admin_user):
    """A defect's event with its delivery in each status, one failed with a long error."""
    for n in range(3):
        defect_create(user=admin_user, comment=f"Pantograph carbon strip worn on unit {n}")
    first, second, _ = Event.objects.order_by("id")
    deliveries = counter_deliveries()
    deliveries.filter(event=first).update(
        status=Status.DELIVERED, attempts=1, delivered_at=first.created_at
    )
    error = "HTTP 400 from the counter server: " + "the body must be {user, action}; " * 4
    deliveries.filter(event=second).update(status=Status.FAILED, attempts=3, last_error=error)
    return first


def assert_fits(page, times_in: list[str]) -> None:
    """No header cut off or broken, every time whole, on one line; the table in the window."""
    headers = page.evaluate(CELLS_JS, "#result_list thead th .text")  # beside its sort marks
    assert headers, "no list on the page"
    for header in headers:
        assert not header["cut"] and header["lines"] <= 1 and header["inside"], header
    for column in times_in:
        times = page.evaluate(CELLS_JS, f"#result_list td.field-{column}")
        shown = [cell for cell in times if cell["text"] != "-"]
        assert shown, column
        for cell in shown:
            assert TIME.match(cell["text"]), cell
            assert not cell["cut"] and cell["lines"] == 1 and cell["inside"], cell
    overflow = page.evaluate(
        "() => { const r = document.querySelector('.results');"
        " return r.scrollWidth - r.clientWidth; }"
    )
    assert overflow <= 0, f"the list scrolls sideways by {overflow} px"


def test_the_index_lists_defects_first_and_the_housekeeping_last(admin_page):
    admin_page.goto("/admin/")
    expect(admin_page).to_have_title(
        "Defects, broadcast events and accounts | Railfleet defect service"
    )
    captions = admin_page.locator("#content-main .module caption").all_inner_texts()
    assert [c.strip().lower() for c in captions[:2]] == [
        "defects",
        "broadcast to destinations",
    ]
    assert "login lockout" in [c.strip().lower() for c in captions[2:]]
    assert not any(c.strip().lower() == "axes" for c in captions)


def test_the_defects_list_fits_with_its_times(admin_page, events):
    admin_page.goto("/admin/defect/defect/")
    expect(admin_page.locator("#result_list tbody tr")).to_have_count(3)
    assert_fits(admin_page, ["timestamp"])


def test_the_events_list_fits_with_its_times_and_compact_events(admin_page, events):
    admin_page.goto("/admin/broadcast/event/")
    expect(admin_page).to_have_title(
        "Broadcast deliveries: 1 pending, 1 delivered, 1 failed | Railfleet defect service"
    )
    assert (
        admin_page.locator("#result_list td.field-event").all_inner_texts()
        == ["create by admin"] * 3
    )
    assert admin_page.locator("#result_list td.field-deliveries").all_inner_texts() == [
        "1 pending",
        "1 failed",
        "1 delivered",
    ]
    assert_fits(admin_page, ["created_at"])


def test_the_deliveries_list_fits_with_its_times_and_errors(admin_page, events):
    admin_page.goto("/admin/broadcast/delivery/")
    expect(admin_page).to_have_title(
        "Broadcast deliveries: 1 pending, 1 delivered, 1 failed | Railfleet defect service"
    )
    expect(admin_page.locator("#result_list tbody tr")).to_have_count(3)
    assert admin_page.locator("#result_list td.field-status").all_inner_texts() == [
        "Pending",
        "Failed",
        "Delivered",
    ]
    assert_fits(admin_page, ["created_at", "due_or_delivered"])


def test_an_events_page_is_titled_with_what_it_is(admin_page, events):
    admin_page.goto(f"/admin/broadcast/event/{events.pk}/change/")
    expect(admin_page).to_have_title("create by admin | View event | Railfleet defect service")
    expect(admin_page.locator("#content h2").first).to_have_text("create by admin")
    created = admin_page.locator(".field-created_at .readonly")
    expect(created).to_have_text(TIME)
    # How its delivery stands, beside it.
    expect(admin_page.locator("#deliveries-group td.field-status")).to_have_text("Delivered")


def test_the_destinations_list_fits(admin_page):
    from broadcast.destinations import destination_create, destination_disable

    planning, _ = destination_create(
        name="maintenance-planning", url="https://planning.railfleet.example/hooks/defects"
    )
    destination_disable(destination=planning, reason="410 Gone from the planning system")
    admin_page.goto("/admin/broadcast/destination/")
    expect(admin_page.locator("#result_list tbody tr")).to_have_count(2)
    assert_fits(admin_page, [])
