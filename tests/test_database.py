"""railfleet/database.py: SQLite's durability setting, SQLITE_SYNCHRONOUS, and
PostgreSQL's server-side binding and prepared statements.

Each test opens its own database file through the project's backend, so the
PRAGMA read back is the one a real connection runs with.
"""

import pytest
from django.core.exceptions import ImproperlyConfigured

from railfleet.database import database_config
from railfleet.sqlite.base import DatabaseWrapper

# PRAGMA synchronous reads back as a number: 1 is NORMAL, 2 is FULL.
PRAGMA_VALUES = {"NORMAL": 1, "FULL": 2}


@pytest.fixture(autouse=True)
def _own_databases(django_db_blocker):
    """These connections are to files of the test's own, not the test database."""
    with django_db_blocker.unblock():
        yield


def synchronous_of_new_connection(tmp_path) -> int:
    """Open a connection as the settings configure it; return its PRAGMA synchronous."""
    settings = database_config(f"sqlite:///{tmp_path / 'db.sqlite3'}", tmp_path)
    settings = {"TIME_ZONE": None, "ATOMIC_REQUESTS": False, "AUTOCOMMIT": True} | settings
    db = DatabaseWrapper(settings | {"CONN_MAX_AGE": 0, "CONN_HEALTH_CHECKS": False})
    try:
        with db.cursor() as cursor:
            cursor.execute("PRAGMA synchronous")
            return cursor.fetchone()[0]
    finally:
        db.close()


def test_sqlite_commits_are_full_by_default(tmp_path, monkeypatch):
    monkeypatch.delenv("SQLITE_SYNCHRONOUS", raising=False)
    assert synchronous_of_new_connection(tmp_path) == PRAGMA_VALUES["FULL"]


@pytest.mark.parametrize("value", ["NORMAL", "normal", " Normal "])
def test_sqlite_synchronous_normal_chooses_the_faster_mode(tmp_path, monkeypatch, value):
    monkeypatch.setenv("SQLITE_SYNCHRONOUS", value)
    assert synchronous_of_new_connection(tmp_path) == PRAGMA_VALUES["NORMAL"]


def test_sqlite_synchronous_full_may_be_named(tmp_path, monkeypatch):
    monkeypatch.setenv("SQLITE_SYNCHRONOUS", "full")
    assert synchronous_of_new_connection(tmp_path) == PRAGMA_VALUES["FULL"]


@pytest.mark.parametrize("value", ["OFF", "EXTRA", "2", "fast"])
def test_unknown_sqlite_synchronous_is_refused_naming_the_variable(tmp_path, monkeypatch, value):
    monkeypatch.setenv("SQLITE_SYNCHRONOUS", value)
    with pytest.raises(ImproperlyConfigured, match="SQLITE_SYNCHRONOUS") as error:
        database_config(f"sqlite:///{tmp_path / 'db.sqlite3'}", tmp_path)
    assert repr(value) in str(error.value)


def test_postgresql_ignores_sqlite_synchronous(tmp_path, monkeypatch):
    monkeypatch.setenv("SQLITE_SYNCHRONOUS", "NORMAL")
    config = database_config("postgres://u:p@127.0.0.1:5432/x", tmp_path)
    assert "init_command" not in config.get("OPTIONS", {})


def test_postgresql_binds_on_the_server_and_prepares_what_runs_five_times(tmp_path):
    config = database_config("postgres://u:p@127.0.0.1:5432/x", tmp_path)
    assert config["OPTIONS"] == {"server_side_binding": True, "prepare_threshold": 5}


def test_postgresql_options_in_database_url_win(tmp_path):
    url = "postgres://u:p@127.0.0.1:5432/x?prepare_threshold=50&server_side_binding=false"
    config = database_config(url, tmp_path)
    assert config["OPTIONS"] == {"server_side_binding": False, "prepare_threshold": 50}


@pytest.mark.parametrize("value", ["none", "None"])
def test_a_prepare_threshold_of_none_prepares_nothing(tmp_path, value):
    config = database_config(f"postgres://u:p@127.0.0.1:5432/x?prepare_threshold={value}", tmp_path)
    assert config["OPTIONS"]["prepare_threshold"] is None


@pytest.mark.postgres
def test_a_statement_run_five_times_is_prepared_on_the_server(db):
    from django.db import connection

    from broadcast.models import Delivery

    def prepared() -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement FROM pg_prepared_statements")
            return [row[0] for row in cursor.fetchall()]

    for _ in range(6):
        Delivery.objects.filter(status="pending", attempts__gte=3).exists()
    assert any('"attempts" >= $' in statement for statement in prepared())
