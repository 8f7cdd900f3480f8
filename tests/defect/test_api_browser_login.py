"""An anonymous browser is sent to the API's login page and back; scripts keep the 401."""

import pytest
from rest_framework.test import APIClient

from railfleet.home import SERVICE_NAME

pytestmark = pytest.mark.django_db

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def test_an_anonymous_browser_is_sent_to_the_login_page_and_back():
    response = APIClient().get("/api/defects?search=brake", HTTP_ACCEPT=BROWSER_ACCEPT)
    assert response.status_code == 302
    assert response["Location"] == "/api/auth/login/?next=/api/defects%3Fsearch%3Dbrake"
    assert "WWW-Authenticate" not in response


@pytest.mark.parametrize("accept", ["application/json", "*/*", None])
def test_a_script_still_gets_the_401_with_its_challenge(accept):
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    response = APIClient().get("/api/defects", **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Basic realm="api"'
    assert response.json() == {"detail": "Authentication credentials were not provided."}


def test_a_browser_write_without_login_is_a_401_not_a_redirect():
    """A redirect would drop the body: only reads go to the login page."""
    response = APIClient().post(
        "/api/defects", {"comment": "x"}, format="json", HTTP_ACCEPT=BROWSER_ACCEPT
    )
    assert response.status_code == 401


def test_wrong_credentials_from_a_browser_stay_a_401():
    response = APIClient().get(
        "/api/defects", HTTP_ACCEPT=BROWSER_ACCEPT, HTTP_AUTHORIZATION="Token not-a-token"
    )
    assert response.status_code == 401


def test_the_login_page_and_the_browsable_api_carry_the_services_name(user):
    login = APIClient().get("/api/auth/login/?next=/api/defects").content.decode()
    assert f"<title>Log in | {SERVICE_NAME}</title>" in login
    client = APIClient()
    client.force_login(user)
    page = client.get("/api/defects", HTTP_ACCEPT="text/html").content.decode()
    assert f"<title>Defect List | {SERVICE_NAME}</title>" in page
    assert f'<a class="navbar-brand" href="/">{SERVICE_NAME}</a>' in page
    assert "Django REST framework" not in login + page


def test_the_swagger_page_carries_the_services_name():
    html = APIClient().get("/api/docs").content.decode()
    assert f"<title>{SERVICE_NAME} API</title>" in html
