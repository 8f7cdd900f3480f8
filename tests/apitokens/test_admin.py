"""API tokens in the admin: staff manage their own, a superuser everyone's; text shown once."""

from datetime import timedelta

import pytest
from django.urls import reverse

from apitokens.models import ApiToken
from apitokens.services import token_create
from tests.apitokens.conftest import get_with

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:apitokens_apitoken_add")
CHANGELIST_URL = reverse("admin:apitokens_apitoken_changelist")


def change_url(token: ApiToken) -> str:
    return reverse("admin:apitokens_apitoken_change", args=[token.pk])


def delete_url(token: ApiToken) -> str:
    return reverse("admin:apitokens_apitoken_delete", args=[token.pk])


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


def test_a_staff_user_creates_a_token_and_sees_its_text_once(staff_client, staff_user, clock):
    response = staff_client.post(ADD_URL, {"name": "depot tablet 3", "expires_days": "30"})

    assert response.status_code == 200
    token = ApiToken.objects.get()
    text = response.context["text"]
    assert text in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    assert (token.user, token.name) == (staff_user, "depot tablet 3")
    assert token.expires == clock.time + timedelta(days=30)
    assert get_with(text).status_code == 200
    # The list and the token's page show its prefix, never its text.
    for page in (CHANGELIST_URL, change_url(token)):
        body = staff_client.get(page).content.decode()
        assert token.prefix in body and text not in body


def test_only_a_superuser_may_make_a_token_that_never_expires(client, staff_user, superuser):
    client.force_login(staff_user)
    assert "never_expires" not in client.get(ADD_URL).content.decode()
    client.post(ADD_URL, {"name": "sneaky", "expires_days": "30", "never_expires": "on"})
    assert ApiToken.objects.get(user=staff_user).expires is not None

    client.force_login(superuser)
    client.post(ADD_URL, {"name": "kiosk", "expires_days": "30", "never_expires": "on"})
    assert ApiToken.objects.get(user=superuser).expires is None


@pytest.mark.parametrize("days", ["", "0", "abc"])
def test_a_token_that_never_expires_needs_no_days(client, superuser, days):
    client.force_login(superuser)

    client.post(ADD_URL, {"name": "kiosk", "expires_days": days, "never_expires": "on"})

    assert ApiToken.objects.get(user=superuser).expires is None


def test_a_superusers_token_that_may_expire_needs_its_days(client, superuser):
    client.force_login(superuser)

    response = client.post(ADD_URL, {"name": "kiosk", "expires_days": ""})

    assert response.context["adminform"].form.errors == {
        "expires_days": ["This field is required."]
    }
    assert not ApiToken.objects.exists()


def test_the_expiry_is_bounded_in_the_admin_too(staff_client):
    response = staff_client.post(ADD_URL, {"name": "too long", "expires_days": "366"})

    assert response.status_code == 200
    assert response.context["adminform"].form.errors.keys() == {"expires_days"}
    assert not ApiToken.objects.exists()


def test_a_staff_user_sees_and_revokes_only_their_own(staff_client, staff_user, user):
    mine, my_text = token_create(user=staff_user, name="mine")
    alices, alice_text = token_create(user=user, name="alice's")

    listed = staff_client.get(CHANGELIST_URL).context["cl"].result_list
    assert list(listed) == [mine]
    # Another's token: as if it did not exist.
    assert staff_client.get(change_url(alices)).status_code == 302
    staff_client.post(delete_url(alices), {"post": "yes"})
    assert get_with(alice_text).status_code == 200

    staff_client.post(delete_url(mine), {"post": "yes"})
    assert get_with(my_text).status_code == 401


def test_a_superuser_sees_and_revokes_everyones(client, superuser, user, staff_user):
    alices, alice_text = token_create(user=user, name="alice's")
    token_create(user=staff_user, name="carol's")
    client.force_login(superuser)

    assert len(client.get(CHANGELIST_URL).context["cl"].result_list) == 2
    client.post(
        CHANGELIST_URL,
        {"action": "delete_selected", "_selected_action": [alices.pk], "post": "yes"},
    )
    assert get_with(alice_text).status_code == 401
    assert list(ApiToken.objects.values_list("name", flat=True)) == ["carol's"]


def test_a_token_is_never_edited(staff_client, staff_user):
    token, _ = token_create(user=staff_user, name="fixed")

    staff_client.post(change_url(token), {"name": "renamed"})

    token.refresh_from_db()
    assert token.name == "fixed"
