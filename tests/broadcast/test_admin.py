"""The broadcast's admin: each event says what it is, in the list and on its own page, with
its deliveries; the deliveries' list filters them and re-queues failed ones."""

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from broadcast.destinations import destination_create
from broadcast.models import Attempt, Delivery, Event, Status
from broadcast.services import event_enqueue
from tests.broadcast.conftest import log_attempt
from tests.helpers import builtin_destination, counter_deliveries

pytestmark = pytest.mark.django_db


def flat(html: str) -> str:
    """`html` with every run of whitespace made one space, to find a cell in it."""
    return " ".join(html.split())


def test_an_event_says_what_it_is_by_user_id_outside_the_admin(user):
    event = event_enqueue(payload={"user": user.pk, "action": "create"}, action="create")
    assert str(event) == f"create by user {user.pk}"
    delivery = counter_deliveries().get(event=event)
    assert str(delivery) == f"event {event.pk} to destination {builtin_destination().pk}, pending"


def test_a_payload_of_another_shape_is_shown_as_compact_json():
    event = Event(payload={"kind": "test", "n": [1, 2]})
    assert str(event) == '{"kind":"test","n":[1,2]}'
    delivery = Delivery(event_id=7, destination_id=3, status=Status.FAILED)
    assert str(delivery) == "event 7 to destination 3, failed"


def test_the_events_page_is_titled_with_the_event_and_its_users_name(admin_client, user):
    event = event_enqueue(payload={"user": user.pk, "action": "create"}, action="create")
    counter_deliveries().filter(event=event).update(status=Status.DELIVERED)
    response = admin_client.get(reverse("admin:broadcast_event_change", args=[event.pk]))
    html = response.content.decode()
    assert "<title>create by alice | View event |" in html
    assert "<h2>create by alice</h2>" in html
    # Its delivery to the built-in destination, and how it stands.
    assert '<td class="field-destination"> <p><a href="' in flat(html)
    assert ">counter-server</a></p>" in html
    assert '<td class="field-status"> <p>Delivered</p> </td>' in flat(html)


def _listed(client) -> tuple[list[tuple[str, str]], int]:
    """The events as the list shows them (what, and its deliveries), and how many queries
    the page took."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("admin:broadcast_event_changelist"))
    changelist = response.context["cl"]
    shown = [(str(e), changelist.model_admin.deliveries(e)) for e in changelist.result_list]
    return shown, len(queries)


def test_the_list_names_each_events_user_with_no_query_per_event(admin_client, user, other_user):
    event_enqueue(payload={"user": user.pk, "action": "create"}, action="create")
    _, queries_for_one = _listed(admin_client)
    event_enqueue(payload={"user": other_user.pk, "action": "delete"}, action="delete")
    event_enqueue(payload={"user": user.pk, "action": "delete"}, action="delete")
    events, queries_for_three = _listed(admin_client)
    assert events == [
        ("delete by alice", "1 pending"),
        ("delete by bob", "1 pending"),
        ("create by alice", "1 pending"),
    ]
    assert queries_for_three == queries_for_one


def test_an_event_of_a_deleted_user_names_the_id(admin_client):
    event = event_enqueue(payload={"user": 4711, "action": "delete"}, action="delete")
    response = admin_client.get(reverse("admin:broadcast_event_change", args=[event.pk]))
    html = response.content.decode()
    assert "<h2>delete by user 4711</h2>" in html
    assert '<td class="field-status"> <p>Pending</p> </td>' in flat(html)


# --- The deliveries' list ------------------------------------------------------------------


@pytest.fixture
def planning():
    """A destination besides the built-in one."""
    return destination_create(name="planning", url="http://planning.example/hooks")[0]


@pytest.fixture
def deliveries(user, planning):
    """Two events, each delivered to the built-in destination and to "planning": of the
    four deliveries one is failed to each destination, one delivered, one pending."""
    first = event_enqueue(payload={"user": user.pk, "action": "create"}, action="create")
    second = event_enqueue(payload={"user": user.pk, "action": "delete"}, action="delete")
    builtin = builtin_destination()
    rows = {
        (event, destination): Delivery.objects.get(event=event, destination=destination)
        for event in (first, second)
        for destination in (builtin, planning)
    }
    states = {
        (first, builtin): {"status": Status.FAILED, "attempts": 3, "last_error": "HTTP 400"},
        (first, planning): {"status": Status.DELIVERED, "delivered_at": timezone.now()},
        (second, planning): {"status": Status.FAILED, "attempts": 1, "last_error": "HTTP 422"},
    }
    for key, state in states.items():
        Delivery.objects.filter(pk=rows[key].pk).update(**state)
    return {
        "builtin failed": rows[first, builtin],
        "planning delivered": rows[first, planning],
        "builtin pending": rows[second, builtin],
        "planning failed": rows[second, planning],
    }


def _delivery_list(client, **query) -> list[int]:
    """The ids of the deliveries the list shows with these filters."""
    response = client.get(reverse("admin:broadcast_delivery_changelist"), query)
    assert response.status_code == 200
    return [delivery.pk for delivery in response.context["cl"].result_list]


def test_the_deliveries_list_filters_by_status_and_destination(admin_client, planning, deliveries):
    every = _delivery_list(admin_client)
    assert sorted(every) == sorted(d.pk for d in deliveries.values())
    failed = _delivery_list(admin_client, status__exact=Status.FAILED)
    assert sorted(failed) == sorted(
        [deliveries["builtin failed"].pk, deliveries["planning failed"].pk]
    )
    to_planning = _delivery_list(admin_client, destination__id__exact=planning.pk)
    assert sorted(to_planning) == sorted(
        [deliveries["planning delivered"].pk, deliveries["planning failed"].pk]
    )
    both = _delivery_list(
        admin_client, status__exact=Status.PENDING, destination__id__exact=builtin_destination().pk
    )
    assert both == [deliveries["builtin pending"].pk]
    page = admin_client.get(reverse("admin:broadcast_delivery_changelist")).content.decode()
    assert "By status" in page and "By destination" in page
    assert "Broadcast deliveries: 1 pending, 1 delivered, 2 failed" in page


def test_the_requeue_action_requeues_only_the_selected_failed_deliveries(admin_client, deliveries):
    selected = [deliveries[n] for n in ("builtin failed", "planning delivered", "builtin pending")]
    before = timezone.now()
    response = admin_client.post(
        reverse("admin:broadcast_delivery_changelist"),
        {"action": "requeue", "_selected_action": [d.pk for d in selected]},
        follow=True,
    )
    assert response.status_code == 200
    assert "1 failed deliveries re-queued." in response.content.decode()
    for delivery in deliveries.values():
        delivery.refresh_from_db()
    requeued = deliveries["builtin failed"]
    assert requeued.status == Status.PENDING
    assert before <= requeued.available_at <= timezone.now()
    # Its attempts and last error are kept: the backoff goes on from where it was.
    assert (requeued.attempts, requeued.last_error) == (3, "HTTP 400")
    assert deliveries["planning delivered"].status == Status.DELIVERED
    assert deliveries["builtin pending"].status == Status.PENDING
    # A failed delivery that was not selected stays failed.
    assert deliveries["planning failed"].status == Status.FAILED


# --- The attempt log -----------------------------------------------------------------------


def _attempt(delivery: Delivery, number: int, status_code: int | None, **fields) -> Attempt:
    return log_attempt(delivery, number, status_code, started_at=timezone.now(),
                       duration_ms=100 * number, **fields)  # fmt: skip


@pytest.fixture
def attempts(deliveries) -> list[Attempt]:
    """The delivered delivery to "planning": no answer, a 503, then a 200; and one attempt of
    another delivery."""
    delivered = deliveries["planning delivered"]
    return [
        _attempt(delivered, 1, None, error="timed out after 10.0 s"),
        _attempt(delivered, 2, 503, error="HTTP 503", response="<h1>Service Unavailable</h1>"),
        _attempt(delivered, 3, 200, response='{"status": 200}'),
        _attempt(deliveries["planning failed"], 1, 422, error="HTTP 422", response="no such user"),
    ]


def test_a_deliverys_page_lists_its_attempts_newest_first(admin_client, deliveries, attempts):
    delivered = deliveries["planning delivered"]
    response = admin_client.get(reverse("admin:broadcast_delivery_change", args=[delivered.pk]))

    assert response.status_code == 200
    html = flat(response.content.decode())
    rows = html.split('<table class="attempt-log">')[1].split("</table>")[0].split("<tr>")[2:]
    assert [row.split("</td>")[0] for row in rows] == ["<td>3", "<td>2", "<td>1"]
    assert "<td>200, succeeded</td>" in rows[0] and "<td>300 ms</td>" in rows[0]
    assert "<td>503, failed</td>" in rows[1] and "HTTP 503" in rows[1]
    # The response's excerpt, escaped: shown, never interpreted.
    assert "<code>&lt;h1&gt;Service Unavailable&lt;/h1&gt;</code>" in rows[1]
    assert "<td>no answer, failed</td>" in rows[2] and "timed out after 10.0 s" in rows[2]
    assert "no such user" not in html  # another delivery's
    all_of_them = reverse("admin:broadcast_attempt_changelist")
    assert f'href="{all_of_them}?delivery__id__exact={delivered.pk}"' in html


def test_a_delivery_without_attempts_says_so(admin_client, deliveries):
    pending = deliveries["builtin pending"]
    response = admin_client.get(reverse("admin:broadcast_delivery_change", args=[pending.pk]))
    assert "None recorded." in response.content.decode()


def _attempt_list(client, **query) -> list[int]:
    response = client.get(reverse("admin:broadcast_attempt_changelist"), query)
    assert response.status_code == 200
    return [attempt.pk for attempt in response.context["cl"].result_list]


def test_the_attempts_list_newest_first_filtered_by_delivery_outcome_and_destination(
    admin_client, planning, deliveries, attempts
):
    assert _attempt_list(admin_client) == [a.pk for a in reversed(attempts)]
    delivered = deliveries["planning delivered"]
    of_delivery = _attempt_list(admin_client, delivery__id__exact=delivered.pk)
    assert of_delivery == [a.pk for a in reversed(attempts[:3])]
    assert _attempt_list(admin_client, succeeded__exact=0) == [attempts[3].pk, attempts[1].pk,
                                                               attempts[0].pk]  # fmt: skip
    to_builtin = _attempt_list(admin_client, destination__id__exact=builtin_destination().pk)
    assert to_builtin == []
    page = flat(admin_client.get(reverse("admin:broadcast_attempt_changelist")).content.decode())
    assert '<td class="field-outcome">no answer, failed</td>' in page
    assert '<td class="field-duration">300 ms</td>' in page


def test_the_attempts_are_read_only(admin_client, attempts):
    change = reverse("admin:broadcast_attempt_change", args=[attempts[0].pk])
    page = admin_client.get(change)
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert admin_client.get(reverse("admin:broadcast_attempt_add")).status_code == 403
    delete = reverse("admin:broadcast_attempt_delete", args=[attempts[0].pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert admin_client.post(change, {"error": "edited"}).status_code == 403
    assert Attempt.objects.get(pk=attempts[0].pk).error == "timed out after 10.0 s"


def test_staff_see_the_attempts_with_the_view_permission_only(client, staff_user, attempts):
    client.force_login(staff_user)
    changelist = reverse("admin:broadcast_attempt_changelist")
    assert client.get(changelist).status_code == 403

    staff_user.user_permissions.add(Permission.objects.get(codename="view_attempt"))
    assert client.get(changelist).status_code == 200
