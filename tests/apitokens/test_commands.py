"""`manage.py drf_create_token` as before, and `manage.py api_token` for operators."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from apitokens.models import ApiToken
from apitokens.services import token_create
from tests.apitokens.conftest import get_with

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[str, str]:
    from io import StringIO

    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_drf_create_token_prints_a_hashed_token_as_before(user, clock):
    out, _ = run("drf_create_token", "alice")

    words = out.split()
    assert words[:2] == ["Generated", "token"] and words[3:] == ["for", "user", "alice"]
    text = words[2]
    token = ApiToken.objects.get()
    assert (token.user, token.name) == (user, "created by drf_create_token")
    assert token.expires == clock.time + timedelta(days=90)
    assert text not in (token.digest, token.prefix)
    assert get_with(text).status_code == 200


def test_drf_create_token_reset_revokes_its_earlier_tokens(user):
    first = run("drf_create_token", "alice")[0].split()[2]
    other, _ = token_create(user=user, name="CI")

    second = run("drf_create_token", "-r", "alice")[0].split()[2]

    assert get_with(first).status_code == 401
    assert get_with(second).status_code == 200
    assert ApiToken.objects.filter(pk=other.pk).exists()


def test_drf_create_token_for_an_unknown_user_fails_clearly(db):
    with pytest.raises(CommandError, match="user nobody does not exist"):
        run("drf_create_token", "nobody")


def test_api_token_create_prints_only_the_text(user, clock):
    out, err = run("api_token", "create", "alice", "--name", "CI", "--expires-days", "7")

    token = ApiToken.objects.get()
    assert out.strip().startswith("rft_") and len(out.split()) == 1
    assert token.expires == clock.time + timedelta(days=7)
    assert "shown this once" in err
    assert get_with(out.strip()).status_code == 200


def test_api_token_create_never_expiring(user):
    run("api_token", "create", "alice", "--name", "kiosk", "--never-expires")

    assert ApiToken.objects.get().expires is None


@pytest.mark.parametrize("days", ["0", "366"])
def test_api_token_create_refuses_an_expiry_out_of_bounds(user, days):
    with pytest.raises(CommandError, match="between 1 and 365"):
        run("api_token", "create", "alice", "--name", "x", "--expires-days", days)
    assert not ApiToken.objects.exists()


def test_api_token_list_shows_every_users_tokens_never_their_text(user, other_user):
    _, alice_text = token_create(user=user, name="alice CI")
    token_create(user=other_user, name="bob tablet")

    everyone, _ = run("api_token", "list")
    only_bob, _ = run("api_token", "list", "bob")

    assert "alice CI" in everyone and "bob tablet" in everyone
    assert alice_text not in everyone
    assert "alice CI" not in only_bob and "bob tablet" in only_bob


def test_api_token_revoke(user):
    token, text = token_create(user=user, name="leaked")
    _, kept_text = token_create(user=user, name="kept")

    out, _ = run("api_token", "revoke", str(token.pk))

    assert f"Revoked token {token.pk}" in out
    assert get_with(text).status_code == 401
    assert get_with(kept_text).status_code == 200


def test_api_token_revoke_says_which_ids_it_did_not_find(user):
    token, _ = token_create(user=user, name="x")

    with pytest.raises(CommandError, match="No token with id 999"):
        run("api_token", "revoke", str(token.pk), "999")
    assert not ApiToken.objects.exists()


def test_api_token_revoke_of_an_id_past_any_primary_key_is_not_found(user):
    too_large = str(2**64)

    with pytest.raises(CommandError, match=f"No token with id {too_large}"):
        run("api_token", "revoke", too_large)
