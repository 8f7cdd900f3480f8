"""The defects admin: automatic creator, read-only user, delete rules, a cheap changelist."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from defect.models import Defect
from defect.services import defect_create

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:defect_defect_add")
CHANGELIST_URL = reverse("admin:defect_defect_changelist")


def change_url(defect: Defect) -> str:
    return reverse("admin:defect_defect_change", args=[defect.pk])


def delete_url(defect: Defect) -> str:
    return reverse("admin:defect_defect_delete", args=[defect.pk])


def form_data(comment: str, **extra) -> dict:
    """What the admin form posts: the timestamp comes as a split date and time."""
    return {"comment": comment, "timestamp_0": "2024-05-01", "timestamp_1": "08:30:00", **extra}


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def superuser_client(client, superuser):
    client.force_login(superuser)
    return client


# --- Add: the creator is the logged-in person ------------------------------------


def test_add_form_has_no_user_field(staff_client):
    response = staff_client.get(ADD_URL)
    assert response.status_code == 200
    assert "user" not in response.context["adminform"].form.fields
    assert 'name="user"' not in response.content.decode()


def test_add_sets_the_logged_in_user(staff_client, staff_user):
    response = staff_client.post(ADD_URL, form_data("Pantograph worn"))
    assert response.status_code == 302, response.content.decode()
    defect = Defect.objects.get()
    assert defect.user == staff_user
    assert defect.comment == "Pantograph worn"


def test_add_ignores_a_posted_user(staff_client, staff_user, other_user):
    response = staff_client.post(ADD_URL, form_data("Door jammed", user=other_user.pk))
    assert response.status_code == 302
    assert Defect.objects.get().user == staff_user


def test_add_writes_a_broadcast_event_for_the_creator(staff_client, staff_user):
    from broadcast.models import Event

    staff_client.post(ADD_URL, form_data("Horn silent"))
    assert Event.objects.get().payload == {"user": staff_user.pk, "action": "create"}


# --- Change: the user is read-only ------------------------------------------------


def test_change_form_shows_the_user_read_only(staff_client, user):
    defect = defect_create(user=user, comment="Wiper broken")
    response = staff_client.get(change_url(defect))
    assert response.status_code == 200
    assert "user" not in response.context["adminform"].form.fields
    assert "user" in response.context["adminform"].readonly_fields
    assert 'name="user"' not in response.content.decode()
    assert user.username in response.content.decode()


def test_change_cannot_reassign_the_user(staff_client, user, other_user):
    defect = defect_create(user=user, comment="Wiper broken")
    response = staff_client.post(change_url(defect), form_data("Wiper fixed", user=other_user.pk))
    assert response.status_code == 302
    defect.refresh_from_db()
    assert defect.comment == "Wiper fixed"
    assert defect.user == user


# --- Delete: only the creator, or a superuser --------------------------------------


def test_staff_can_delete_own_defect(staff_client, staff_user):
    defect = defect_create(user=staff_user, comment="Mine")
    assert staff_client.get(delete_url(defect)).status_code == 200
    response = staff_client.post(delete_url(defect), {"post": "yes"})
    assert response.status_code == 302
    assert not Defect.objects.filter(pk=defect.pk).exists()


def test_staff_cannot_delete_another_users_defect(staff_client, user):
    defect = defect_create(user=user, comment="Not mine")
    assert staff_client.get(delete_url(defect)).status_code == 403
    assert staff_client.post(delete_url(defect), {"post": "yes"}).status_code == 403
    assert Defect.objects.filter(pk=defect.pk).exists()


def test_change_form_offers_delete_only_to_the_creator(staff_client, staff_user, user):
    own = defect_create(user=staff_user, comment="Mine")
    others = defect_create(user=user, comment="Not mine")
    assert staff_client.get(change_url(own)).context["has_delete_permission"]
    assert not staff_client.get(change_url(others)).context["has_delete_permission"]


def bulk_delete(client, defects: list[Defect]):
    return client.post(
        CHANGELIST_URL,
        {
            "action": "delete_selected",
            "_selected_action": [d.pk for d in defects],
            "post": "yes",
        },
    )


def test_staff_bulk_delete_refuses_a_selection_with_others_defects(staff_client, staff_user, user):
    own = defect_create(user=staff_user, comment="Mine")
    others = defect_create(user=user, comment="Not mine")
    response = bulk_delete(staff_client, [own, others])
    assert response.status_code == 403
    assert Defect.objects.count() == 2


def test_staff_bulk_delete_of_own_defects(staff_client, staff_user, user):
    own = [defect_create(user=staff_user, comment=f"Mine {i}") for i in range(3)]
    others = defect_create(user=user, comment="Not mine")
    response = bulk_delete(staff_client, own)
    assert response.status_code == 302
    assert list(Defect.objects.all()) == [others]


def test_delete_queryset_never_deletes_others_defects(rf, staff_user, user):
    """Behind the permission check: even called directly, a staff member's bulk
    delete keeps others' defects."""
    from django.contrib.admin.sites import site

    mine = defect_create(user=staff_user, comment="Mine")
    defect_create(user=user, comment="Not mine")
    request = rf.post(CHANGELIST_URL)
    request.user = staff_user
    site.get_model_admin(Defect).delete_queryset(request, Defect.objects.all())
    assert [d.user for d in Defect.objects.all()] == [user]
    assert not Defect.objects.filter(pk=mine.pk).exists()


def test_superuser_deletes_any_defect(superuser_client, user, other_user):
    one = defect_create(user=user, comment="Alice's")
    assert superuser_client.post(delete_url(one), {"post": "yes"}).status_code == 302
    many = [defect_create(user=u, comment="bulk") for u in (user, other_user)]
    assert bulk_delete(superuser_client, many).status_code == 302
    assert Defect.objects.count() == 0


def test_staff_without_delete_permission_deletes_nothing(client, staff_user):
    from django.contrib.auth.models import Permission

    staff_user.user_permissions.remove(Permission.objects.get(codename="delete_defect"))
    client.force_login(staff_user)
    defect = defect_create(user=staff_user, comment="Mine")
    assert client.post(delete_url(defect), {"post": "yes"}).status_code == 403
    assert Defect.objects.filter(pk=defect.pk).exists()


# --- Changelist: columns, search, filters, constant queries ------------------------


def test_changelist_columns_and_newest_first(superuser_client, user):
    old = defect_create(
        user=user, comment="old " + "x" * 200, timestamp=timezone.now() - timedelta(1)
    )
    new = defect_create(user=user, comment="new")
    response = superuser_client.get(CHANGELIST_URL)
    assert response.status_code == 200
    changelist = response.context["cl"]
    assert list(changelist.list_display) == [
        "action_checkbox",
        "id",
        "short_comment",
        "user",
        "timestamp",
    ]
    assert list(changelist.result_list) == [new, old]
    html = response.content.decode()
    assert "x" * 200 not in html  # the comment is shortened
    assert changelist.date_hierarchy == "timestamp"


def test_changelist_search_on_comment_and_username(superuser_client, user, other_user):
    brake = defect_create(user=user, comment="Brake pad worn")
    door = defect_create(user=other_user, comment="Door jammed")
    by_comment = superuser_client.get(CHANGELIST_URL, {"q": "brake"}).context["cl"]
    assert list(by_comment.result_list) == [brake]
    by_username = superuser_client.get(CHANGELIST_URL, {"q": other_user.username}).context["cl"]
    assert list(by_username.result_list) == [door]


def test_changelist_filters_by_user_and_date(superuser_client, user, other_user):
    old = defect_create(user=user, comment="old", timestamp=datetime(2020, 3, 1, 12, tzinfo=UTC))
    new = defect_create(user=user, comment="new")
    defect_create(user=other_user, comment="bob's")
    by_user = superuser_client.get(CHANGELIST_URL, {"user__id__exact": user.pk}).context["cl"]
    assert list(by_user.result_list) == [new, old]
    by_year = superuser_client.get(CHANGELIST_URL, {"timestamp__year": 2020}).context["cl"]
    assert list(by_year.result_list) == [old]
    by_date_filter = superuser_client.get(
        CHANGELIST_URL,
        {
            "timestamp__gte": "2020-01-01 00:00:00+00:00",
            "timestamp__lt": "2021-01-01 00:00:00+00:00",
        },
    ).context["cl"]
    assert list(by_date_filter.result_list) == [old]


def _create_defects(users, count: int) -> None:
    now = timezone.now()
    Defect.objects.bulk_create(
        Defect(
            user=users[i % len(users)], comment=f"defect {i}", timestamp=now - timedelta(hours=i)
        )
        for i in range(count)
    )


def _changelist_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(CHANGELIST_URL)
    assert response.status_code == 200
    return len(queries)


def test_changelist_query_count_does_not_grow_with_rows(superuser_client, user, other_user):
    users = [user, other_user]
    _create_defects(users, 5)
    few = _changelist_queries(superuser_client)
    _create_defects(users, 2000)
    many = _changelist_queries(superuser_client)
    assert many == few, f"{few} queries for 5 rows, {many} for 2005"
    assert many <= 12


# --- ensure_dev_admin ----------------------------------------------------------------


def test_ensure_dev_admin_creates_admin_in_debug(settings):
    settings.DEBUG = True
    call_command("ensure_dev_admin")
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    assert admin.check_password("admin")


def test_ensure_dev_admin_is_idempotent(settings):
    settings.DEBUG = True
    call_command("ensure_dev_admin")
    admin = get_user_model().objects.get(username="admin")
    admin.set_password("changed-by-the-developer")
    admin.save()
    call_command("ensure_dev_admin")
    assert get_user_model().objects.filter(username="admin").count() == 1
    # An existing account is left alone (its password is not reset).
    assert get_user_model().objects.get(username="admin").check_password("changed-by-the-developer")


def test_ensure_dev_admin_refuses_when_debug_is_off(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DJANGO_DEBUG is off"):
        call_command("ensure_dev_admin")
    assert not get_user_model().objects.filter(username="admin").exists()
