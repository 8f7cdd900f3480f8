"""railfleet/home.py: the landing page leads everywhere; the admin says the service's name."""

import re

import pytest

from railfleet.home import SERVICE_NAME

LINKS = [
    "/admin/",
    "/api/defects",
    "/api/auth/login/?next=/api/defects",
    "/api/docs",
    "/api/schema",
    "/health",
    "/ready",
]


def _links(html: str) -> list[str]:
    return re.findall(r'href="([^"]+)"', html)


def test_the_landing_page_links_to_the_admin_api_docs_and_health(client, settings):
    settings.DEBUG = False
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert _links(html) == LINKS
    assert f"<h1>{SERVICE_NAME}</h1>" in html
    assert "admin</code> / <code>admin" not in html  # no development hint in production


def test_in_development_it_names_the_development_account(client, settings):
    settings.DEBUG = True
    html = client.get("/").content.decode()
    assert "<code>admin</code> / <code>admin</code>" in html


@pytest.mark.django_db
def test_every_link_answers_an_anonymous_visitor(client):
    statuses = {url: client.get(url).status_code for url in LINKS}
    assert statuses == {
        "/admin/": 302,  # to the login page
        "/api/defects": 401,  # the test client asks for no type: JSON's answer
        "/api/auth/login/?next=/api/defects": 200,
        "/api/docs": 200,
        "/api/schema": 200,
        "/health": 200,
        "/ready": 200,
    }


@pytest.mark.django_db
def test_the_admin_says_the_services_name(admin_client):
    html = admin_client.get("/admin/").content.decode()
    assert f"<title>Defects, broadcast events and accounts | {SERVICE_NAME}</title>" in html
    assert f'<a href="/admin/">{SERVICE_NAME}</a>' in html
    assert "Django administration" not in html
