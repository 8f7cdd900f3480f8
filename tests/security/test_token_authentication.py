"""Token authentication (railfleet/authentication.py) answers exactly as DRF's own."""

import pytest
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication as DRFTokenAuthentication
from rest_framework.authtoken.models import Token

from railfleet.authentication import TokenAuthentication

pytestmark = pytest.mark.django_db


class OtherToken(Token):
    """A token model of a project's own (a proxy here: same table)."""

    class Meta:
        proxy = True
        app_label = "authtoken"


def authenticate(key: str):
    return TokenAuthentication().authenticate_credentials(key)


def test_a_valid_token_gives_its_user_and_the_token(token, user):
    found_user, found_token = authenticate(token.key)

    assert found_user == user
    assert found_user.username == "alice"
    assert found_token.pk == token.key
    assert found_token.user is found_user


def test_the_user_has_its_fields_converted_as_the_orm_would(token, user):
    found_user, _ = authenticate(token.key)
    expected, _ = DRFTokenAuthentication().authenticate_credentials(token.key)

    for field in type(user)._meta.concrete_fields:
        assert getattr(found_user, field.attname) == getattr(expected, field.attname), field.name
    assert found_user.is_active is True
    assert found_user.date_joined.tzinfo is not None


def test_the_tokens_creation_time_is_loaded_when_read(token):
    _, found_token = authenticate(token.key)

    assert found_token.created == token.created


@pytest.mark.parametrize("key", ["0" * 40, "", "x' OR '1'='1"])
def test_an_unknown_key_is_refused(token, key):
    with pytest.raises(exceptions.AuthenticationFailed, match="Invalid token"):
        authenticate(key)


def test_a_deleted_token_is_refused_at_once(token):
    key = token.key
    authenticate(key)
    Token.objects.filter(key=key).delete()

    with pytest.raises(exceptions.AuthenticationFailed, match="Invalid token"):
        authenticate(key)


def test_an_inactive_users_token_is_refused_at_once(token, user):
    authenticate(token.key)
    user.is_active = False
    user.save(update_fields=["is_active"])

    with pytest.raises(exceptions.AuthenticationFailed, match="inactive"):
        authenticate(token.key)


def test_the_api_refuses_a_deleted_token_with_401(api_client, token):
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api_client.get("/api/defects").status_code == 200
    token.delete()

    response = api_client.get("/api/defects")

    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}


def test_another_token_model_is_looked_up_as_drf_does(token, user, monkeypatch):
    calls = []
    original = DRFTokenAuthentication.authenticate_credentials

    def spy(self, key):
        calls.append(key)
        return original(self, key)

    monkeypatch.setattr(DRFTokenAuthentication, "authenticate_credentials", spy)
    auth = TokenAuthentication()
    auth.model = OtherToken

    found_user, found_token = auth.authenticate_credentials(token.key)

    assert calls == [token.key]
    assert (found_user, type(found_token)) == (user, OtherToken)
