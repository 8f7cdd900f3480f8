"""The admin as an operator reads it: the service's apps first, housekeeping under plain
names, every time in one format with its time zone (railfleet/admin_site.py, formats/)."""

import datetime

import pytest
from django.urls import reverse

from defect.services import defect_create
from railfleet.admin_site import DOMAIN_APPS

pytestmark = pytest.mark.django_db


def _index_apps(client) -> list[tuple[str, str]]:
    app_list = client.get(reverse("admin:index")).context["app_list"]
    return [(app["app_label"], str(app["name"])) for app in app_list]


def test_the_index_lists_defects_then_the_broadcast_then_the_housekeeping(admin_client):
    apps = _index_apps(admin_client)
    assert [label for label, _ in apps[:2]] == DOMAIN_APPS == ["defect", "broadcast"]
    housekeeping = [name for _, name in apps[2:]]
    assert housekeeping == sorted(housekeeping, key=str.lower)
    assert {"Authentication and Authorization", "Login lockout"} <= set(housekeeping)


def test_the_lockout_tables_go_by_a_name_an_operator_knows(admin_client):
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert "Login lockout" in html
    assert ">Axes<" not in html


def test_the_app_page_keeps_its_one_app(admin_client):
    response = admin_client.get(reverse("admin:app_list", args=["axes"]))
    assert [app["app_label"] for app in response.context["app_list"]] == ["axes"]


def test_the_defects_list_shows_times_as_the_form_takes_them_with_the_time_zone(
    admin_client, admin_user
):
    when = datetime.datetime(2026, 11, 28, 21, 15, 7, tzinfo=datetime.UTC)
    defect = defect_create(user=admin_user, comment="Pantograph worn", timestamp=when)
    listing = admin_client.get(reverse("admin:defect_defect_changelist")).content.decode()
    assert "2026-11-28 21:15:07 UTC" in listing
    assert "p.m." not in listing
    form = admin_client.get(reverse("admin:defect_defect_change", args=[defect.pk]))
    html = form.content.decode()
    assert 'value="2026-11-28"' in html and 'value="21:15:07"' in html
    assert "Time zone: UTC." in html


def test_times_follow_the_projects_time_zone(admin_client, admin_user, settings):
    settings.TIME_ZONE = "Europe/Paris"
    when = datetime.datetime(2026, 11, 28, 21, 15, 7, tzinfo=datetime.UTC)
    defect_create(user=admin_user, comment="Horn silent", timestamp=when)
    listing = admin_client.get(reverse("admin:defect_defect_changelist")).content.decode()
    assert "2026-11-28 22:15:07 CET" in listing
