"""The destinations in the admin: listed with their pending deliveries, added with the secret
shown once, changed, disabled, paused, resumed, rotated, deleted with a warning; and the
events' admin showing each event's subject, the defect's id."""

import pytest
from django.urls import reverse

from broadcast.destinations import destination_create, destination_signing_secrets
from broadcast.models import Delivery, Destination, Event, Status
from broadcast.services import event_enqueue
from defect.services import defect_create

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:broadcast_destination_changelist")
ADD = reverse("admin:broadcast_destination_add")
FORM = {
    "name": "planning",
    "url": "https://planning.example/hooks",
    "actions": ["create", "delete"],
    "format": "counter",
    "enabled": "on",
    "max_rate": "0",
    "paused_reason": "",
}


def change_url(destination: Destination) -> str:
    return reverse("admin:broadcast_destination_change", args=[destination.pk])


def builtin() -> Destination:
    return Destination.objects.get(managed=True)


@pytest.fixture
def planning() -> Destination:
    return destination_create(name="planning", url="https://planning.example/hooks")[0]


def act(client, action: str, *destinations: Destination):
    return client.post(
        CHANGELIST, {"action": action, "_selected_action": [d.pk for d in destinations]}
    )


def test_the_list_shows_each_destination_with_its_pending_deliveries(admin_client, planning):
    for _ in range(3):
        event_enqueue(payload={"user": 1, "action": "create"}, action="create")
    event_enqueue(payload={"user": 1, "action": "delete"}, action="delete")
    Destination.objects.filter(pk=planning.pk).update(on_delete=False)

    response = admin_client.get(CHANGELIST)

    rows = {d.name: d for d in response.context["cl"].result_list}
    assert (rows["planning"].pending, rows["counter-server"].pending) == (4, 4)
    page = response.content.decode()
    for shown in ("https://planning.example/hooks", "create, delete", "Pending", "Managed"):
        assert shown in page


def test_adding_shows_the_secret_once(admin_client):
    response = admin_client.post(ADD, FORM)

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    destination = Destination.objects.get(name="planning")
    ((shown_for, secret),) = response.context["secrets"]
    assert shown_for.pk == destination.pk
    assert secret in response.content.decode()
    assert destination_signing_secrets(destination=destination) == [secret]
    for page in (CHANGELIST, change_url(destination)):
        assert secret not in admin_client.get(page).content.decode()


def test_adding_with_bad_input_shows_the_form_again(admin_client):
    response = admin_client.post(ADD, {**FORM, "url": "ftp://files.example/", "actions": []})

    assert response.status_code == 200
    assert set(response.context["adminform"].form.errors) == {"url", "actions"}
    assert not Destination.objects.filter(managed=False).exists()


def test_changing_goes_through_the_service(admin_client, planning):
    Destination.objects.filter(pk=planning.pk).update(enabled=False, disabled_reason="410 Gone")
    data = {**FORM, "actions": ["delete"], "format": "event"}

    response = admin_client.post(change_url(planning), data)

    assert response.status_code == 302
    planning.refresh_from_db()
    assert (planning.actions, planning.format) == (["delete"], "event")
    assert (planning.enabled, planning.disabled_reason) == (True, "")  # enabled: reason cleared


def test_the_built_in_destinations_name_and_url_are_read_only(admin_client, settings):
    row = builtin()
    page = admin_client.get(change_url(row)).content.decode()
    assert "kept in step with COUNTER_SERVER_URL" in page
    assert 'name="name"' not in page and 'name="url"' not in page
    assert 'name="paused"' in page

    admin_client.post(change_url(row), {**FORM, "paused": "on", "paused_reason": "upgrade"})

    row.refresh_from_db()
    assert (row.name, row.url) == ("counter-server", settings.COUNTER_SERVER_URL)
    assert (row.paused, row.paused_reason) == (True, "upgrade")


def test_disable_pause_and_resume_actions(admin_client, planning):
    act(admin_client, "disable", planning)
    act(admin_client, "pause_selected", planning)
    planning.refresh_from_db()
    assert (planning.enabled, planning.disabled_reason) == (False, "disabled in the admin")
    assert (planning.paused, planning.paused_reason) == (True, "paused in the admin")

    act(admin_client, "resume_selected", planning)
    planning.refresh_from_db()
    assert (planning.paused, planning.paused_reason) == (False, "")


def test_rotating_shows_the_new_secret_once_and_skips_the_built_in_one(admin_client, planning):
    (old,) = destination_signing_secrets(destination=planning)

    response = act(admin_client, "rotate_secret", planning, builtin())

    ((shown_for, secret),) = response.context["secrets"]
    assert shown_for.pk == planning.pk
    assert "no-store" in response["Cache-Control"]
    assert destination_signing_secrets(destination=planning) == [secret, old]


def test_the_delete_confirmation_says_pending_deliveries_are_dropped(admin_client, planning):
    event_enqueue(payload={"user": 1, "action": "create"}, action="create")
    delete_url = reverse("admin:broadcast_destination_delete", args=[planning.pk])

    page = admin_client.get(delete_url).content.decode()
    assert "Its 1 pending deliveries will be dropped" in page
    selected = act(admin_client, "delete_selected", planning).content.decode()
    assert "Their pending deliveries will be dropped" in selected

    admin_client.post(delete_url, {"post": "yes"})
    assert not Destination.objects.filter(pk=planning.pk).exists()


@pytest.mark.parametrize("object_id", ["abc", "999999"])
def test_the_delete_page_of_no_destination_redirects_as_djangos_does(admin_client, object_id):
    response = admin_client.get(f"/admin/broadcast/destination/{object_id}/delete/")
    assert response.status_code == 302 and response.url == reverse("admin:index")


def test_the_built_in_destination_cannot_be_deleted(admin_client):
    row = builtin()
    delete_url = reverse("admin:broadcast_destination_delete", args=[row.pk])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    admin_client.post(
        CHANGELIST, {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"}
    )
    assert Destination.objects.filter(pk=row.pk).exists()


def test_the_events_admin_shows_and_finds_the_defects_id(admin_client, user):
    first = defect_create(user=user, comment="Horn silent")
    defect_create(user=user, comment="Door stuck")
    changelist = reverse("admin:broadcast_event_changelist")

    listed = admin_client.get(changelist)
    assert f'<td class="field-subject">{first.pk}</td>' in listed.content.decode()
    # The search also looks in the keys (UUIDs), which may hold the digits too.
    found = admin_client.get(changelist, {"q": str(first.pk)}).context["cl"].result_list
    assert first.pk in [e.subject for e in found]
    # A word that is no number finds no subject, and is no error.
    assert admin_client.get(changelist, {"q": "horn"}).status_code == 200
    event = Event.objects.get(subject=first.pk)
    page = admin_client.get(reverse("admin:broadcast_event_change", args=[event.pk]))
    assert "defect.created" in page.content.decode()  # the envelope


def test_a_destinations_page_links_to_its_failed_deliveries_and_last_attempts(
    admin_client, planning
):
    for _ in range(3):
        event_enqueue(payload={"user": 1, "action": "create"}, action="create")
    mine = Delivery.objects.filter(destination=planning).order_by("id")
    Delivery.objects.filter(pk__in=[d.pk for d in mine[:2]]).update(status=Status.FAILED)
    Delivery.objects.filter(destination__managed=True).update(status=Status.FAILED)

    page = admin_client.get(change_url(planning)).content.decode()

    failed = reverse("admin:broadcast_delivery_changelist")
    failed += f"?destination__id__exact={planning.pk}&amp;status__exact=failed"
    attempts = reverse("admin:broadcast_attempt_changelist")
    attempts += f"?destination__id__exact={planning.pk}"
    assert f'<a href="{failed}">2 failed deliveries</a>' in page
    assert f'<a href="{attempts}">its last attempts</a>' in page
    # The links lead to those lists, filtered.
    listed = admin_client.get(failed.replace("&amp;", "&")).context["cl"].result_list
    assert sorted(d.pk for d in listed) == [d.pk for d in mine[:2]]
    assert admin_client.get(attempts).status_code == 200


def test_the_alerts_destination_can_be_paused_but_not_subscribed(admin_client, settings):
    from broadcast.destinations import sync_alerts_destination

    settings.BROADCAST = {**settings.BROADCAST, "ALERT_URL": "http://127.0.0.1:9/alerts"}
    alerts = sync_alerts_destination()
    form = {**FORM, "actions": ["create"], "format": "counter", "paused": "on",
            "paused_reason": "the pager is down"}  # fmt: skip
    response = admin_client.post(change_url(alerts), form)

    assert response.status_code == 302
    alerts.refresh_from_db()
    assert (alerts.paused, alerts.paused_reason) == (True, "the pager is down")
    assert (alerts.actions, alerts.format, alerts.on_alert) == ([], "event", True)
