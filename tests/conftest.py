"""Shared fixtures: users and the clients they use."""

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model


def pytest_collection_modifyitems(config, items):
    """Deselect the tests of the other database: `postgres` ones on SQLite, `sqlite` ones on
    PostgreSQL.

    Deselected, not skipped: they do not apply there, and CI runs the suite on both.
    """
    from django.conf import settings

    on_postgres = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    other = "sqlite" if on_postgres else "postgres"
    kept = [item for item in items if item.get_closest_marker(other) is None]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept


def pytest_sessionfinish(session, exitstatus):
    """Remove the SQLite test database's lock file (Django removes the database itself)."""
    from django.conf import settings

    name = settings.DATABASES["default"].get("TEST", {}).get("NAME")
    if name and settings.DATABASES["default"]["ENGINE"] == "railfleet.sqlite":
        Path(f"{name}-writelock").unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def _clear_cache():
    """Each test starts with empty API throttle counters (they live in the cache)."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def user(db):
    """A regular (non-staff) user."""
    return get_user_model().objects.create_user("alice", password="alice-password")


@pytest.fixture
def other_user(db):
    """Another regular user, to check that one cannot act on the other's defects."""
    return get_user_model().objects.create_user("bob", password="bob-password")


@pytest.fixture
def staff_user(db):
    """A staff member with every defect permission, but not a superuser."""
    from django.contrib.auth.models import Permission

    staff = get_user_model().objects.create_user("carol", password="carol-password", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(content_type__app_label="defect"))
    return staff


@pytest.fixture
def superuser(db):
    """A superuser (root)."""
    return get_user_model().objects.create_superuser("root", "root@example.com", "root-password")


@pytest.fixture
def api_client():
    """A DRF test client with no credentials."""
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def with_token(settings):
    """Production settings (debug off) with METRICS_TOKEN set, which /metrics and /ready's
    destinations ask for: the request header that bears it."""
    from tests.helpers import METRICS_TOKEN

    settings.DEBUG = False
    settings.METRICS_TOKEN = METRICS_TOKEN
    return {"HTTP_AUTHORIZATION": f"Bearer {METRICS_TOKEN}"}


@pytest.fixture
def token(user):
    """The text of a new API token of `user` (as `manage.py drf_create_token alice` makes it)."""
    from apitokens.services import token_create

    return token_create(user=user, name="tests")[1]


@pytest.fixture
def counter_server(tmp_path):
    """The real Deno counter server on a port of its own, stopped at the end."""
    from tests.helpers import CounterServer, free_port

    server = CounterServer(free_port(), tmp_path / "counter.log").start()
    yield server
    server.stop()
