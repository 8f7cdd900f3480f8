"""A database outage answered as one (railfleet/outage.py).

The classification is checked on the drivers' own errors; the behaviour on a
real gunicorn whose DATABASE_URL points at nothing: a PostgreSQL port where
nothing listens, a SQLite file that cannot be opened (and then can), and, on
PostgreSQL, its connections killed under it.
"""

import json
import sqlite3
import subprocess
import sys

import psycopg
import pytest
from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, ProgrammingError, connection
from django.db.backends.postgresql.base import DatabaseWrapper as PostgresWrapper
from django.db.backends.utils import CursorWrapper

from railfleet.database import database_config
from railfleet.outage import RETRY_AFTER_SECONDS, is_connection_failure
from railfleet.sqlite.base import DatabaseWrapper as SqliteWrapper
from tests.helpers import ROOT, WebServer, free_port, wait_for
from tests.helpers import test_database_url as database_url_of_tests

OUTAGE_LINE = "Database unavailable"
BACK_LINE = "Database available again"


def wrapped(driver_error: Exception, django_class=OperationalError) -> Exception:
    """The error as Django raises it: its own class, the driver's error as the cause."""
    error = django_class(*driver_error.args)
    error.__cause__ = driver_error
    return error


def connect(wrapper_class, url: str, tmp_path) -> OperationalError:
    """The error Django raises connecting to `url` (a database of the test's own)."""
    settings = database_config(url, tmp_path) | {"CONN_MAX_AGE": 0, "CONN_HEALTH_CHECKS": False}
    defaults = {"TIME_ZONE": None, "ATOMIC_REQUESTS": False, "AUTOCOMMIT": True, "OPTIONS": {}}
    db = wrapper_class(defaults | settings)
    with pytest.raises(OperationalError) as error:
        db.ensure_connection()
    db.close()
    return error.value


@pytest.fixture(autouse=True)
def _own_databases(django_db_blocker):
    """The connections made here are to databases of the tests' own, or to nothing."""
    with django_db_blocker.unblock():
        yield


# --- What counts as an outage ------------------------------------------------------------


def test_a_refused_postgresql_connection_is_an_outage(tmp_path):
    error = connect(PostgresWrapper, f"postgres://u:p@127.0.0.1:{free_port()}/x", tmp_path)
    assert is_connection_failure(error)


def test_an_unopenable_sqlite_file_is_an_outage(tmp_path):
    error = connect(SqliteWrapper, f"sqlite:///{tmp_path}/missing/db.sqlite3", tmp_path)
    assert is_connection_failure(error)


@pytest.mark.parametrize(
    "sqlstate_class",
    [psycopg.errors.AdminShutdown, psycopg.errors.CannotConnectNow,
     psycopg.errors.ConnectionFailure, psycopg.errors.TooManyConnections],
)  # fmt: skip
def test_postgresql_shutdown_and_connection_states_are_outages(sqlstate_class):
    assert is_connection_failure(wrapped(sqlstate_class("terminating connection")))


@pytest.mark.parametrize(
    "sqlstate_class",
    [psycopg.errors.DeadlockDetected, psycopg.errors.QueryCanceled,
     psycopg.errors.SerializationFailure, psycopg.errors.LockNotAvailable,
     psycopg.errors.DiskFull],
)  # fmt: skip
def test_other_postgresql_operational_errors_stay_errors(sqlstate_class):
    assert not is_connection_failure(wrapped(sqlstate_class("a fault of this statement")))


def test_a_postgresql_interface_error_counts_only_on_a_closed_connection():
    assert not is_connection_failure(
        wrapped(psycopg.InterfaceError("the cursor is closed"), InterfaceError)
    )


@pytest.mark.django_db
def test_a_missing_table_is_a_bug_not_an_outage():
    # SQLite raises an OperationalError for it, PostgreSQL a ProgrammingError.
    with pytest.raises((OperationalError, ProgrammingError)) as error, connection.cursor() as c:
        c.execute("SELECT * FROM no_such_table")
    assert not is_connection_failure(error.value)


def test_a_locked_sqlite_database_is_not_an_outage():
    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorcode = sqlite3.SQLITE_BUSY
    assert not is_connection_failure(wrapped(busy))
    assert not is_connection_failure(OperationalError("database is locked"))  # railfleet.sqlite's


def test_other_database_errors_are_never_outages():
    assert not is_connection_failure(IntegrityError("duplicate key"))
    assert not is_connection_failure(ProgrammingError("syntax error"))
    assert not is_connection_failure(ValueError("not a database error"))


# --- In-process: debug mode, and a real bug stays a 500 ----------------------------------


def refuse_with(monkeypatch, error: Exception) -> None:
    def execute(*args, **kwargs):
        raise error

    monkeypatch.setattr(CursorWrapper, "execute", execute)


@pytest.mark.django_db
def test_in_debug_mode_the_api_answers_json_503(client, token, settings, monkeypatch):
    settings.DEBUG = True
    refuse_with(monkeypatch, wrapped(psycopg.errors.AdminShutdown("terminating connection")))
    response = client.get("/api/defects", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 503
    assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert response.json() == {"detail": "The database is unavailable; retry later."}


@pytest.mark.django_db
def test_ready_logs_an_outage_once_however_often_it_is_probed(client, monkeypatch, caplog):
    from railfleet.outage import outage_log

    monkeypatch.setattr(outage_log, "down", False)  # whatever an earlier test left
    refuse_with(monkeypatch, wrapped(psycopg.errors.AdminShutdown("terminating connection")))
    for _ in range(3):
        response = client.get("/ready")
        assert (response.status_code, response.json()) == (503, {"database": "unavailable"})
    assert caplog.text.count(OUTAGE_LINE) == 1, caplog.text
    assert "Service Unavailable" not in caplog.text


@pytest.mark.django_db
def test_a_real_bug_stays_a_500(client, token, monkeypatch):
    refuse_with(monkeypatch, wrapped(psycopg.errors.DeadlockDetected("deadlock detected")))
    response = client.get("/api/defects", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 500
    assert "Retry-After" not in response


def fail_after_the_view(monkeypatch, error: Exception) -> None:
    """The session middleware raises `error` at the response, as a session save would."""
    from django.contrib.sessions.middleware import SessionMiddleware

    def process_response(self, request, response):
        raise error

    monkeypatch.setattr(SessionMiddleware, "process_response", process_response)


@pytest.mark.django_db
def test_an_outage_met_after_the_view_is_the_same_503_logged_once(token, monkeypatch, caplog):
    from django.test import Client

    from railfleet.outage import outage_log

    monkeypatch.setattr(outage_log, "down", False)  # whatever an earlier test left
    fail_after_the_view(monkeypatch, wrapped(psycopg.errors.AdminShutdown("terminating")))
    client = Client(raise_request_exception=False)
    for _ in range(2):
        response = client.get("/api/defects", HTTP_AUTHORIZATION=f"Token {token}")
        assert response.status_code == 503
        assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)
        assert response.json() == {"detail": "The database is unavailable; retry later."}
    assert b"Service Unavailable" in client.get("/").content
    assert caplog.text.count(OUTAGE_LINE) == 1, caplog.text
    assert "Internal Server Error" not in caplog.text and "Traceback" not in caplog.text


@pytest.mark.django_db
def test_a_real_bug_after_the_view_stays_a_500(token, monkeypatch):
    from django.test import Client

    fail_after_the_view(monkeypatch, wrapped(psycopg.errors.DeadlockDetected("deadlock")))
    response = Client(raise_request_exception=False).get("/api/defects")
    assert response.status_code == 500
    assert "Retry-After" not in response


# --- A real server with no database --------------------------------------------------------


@pytest.fixture
def server_on(tmp_path):
    """Start gunicorn on a DATABASE_URL; stop it after the test."""
    servers = []

    def start(url: str) -> WebServer:
        server = WebServer(url, tmp_path / "web.log").start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def hammer(server: WebServer, token: str = "0" * 40) -> None:
    """Many requests that need the database: all 503, in the expected shape."""
    auth = {"Authorization": f"Token {token}"}
    for _ in range(10):
        status, headers, body = server.request("/api/defects", headers=auth)
        assert status == 503, body
        assert headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
        assert headers["Content-Type"] == "application/json"
        assert json.loads(body) == {"detail": "The database is unavailable; retry later."}
    post = json.dumps({"comment": "Horn silent"}).encode()
    status, headers, _ = server.request(
        "/api/defects",
        method="POST",
        headers={**auth, "Content-Type": "application/json"},
        body=post,
    )
    assert status == 503 and headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    # Outside /api/: Django's plain page (the session cookie makes the admin read the database).
    status, headers, body = server.request("/admin/", headers={"Cookie": "sessionid=" + "a" * 32})
    assert status == 503
    assert headers["Content-Type"].startswith("text/html")
    assert b"Service Unavailable" in body and headers["Retry-After"]
    # /ready keeps its own answer, /health does not need the database.
    for _ in range(3):  # probes come every few seconds: the outage is still logged once
        status, _, body = server.request("/ready")
        assert (status, json.loads(body)) == (503, {"database": "unavailable"})
    assert server.request("/health")[0] == 200


def assert_logged_once(server: WebServer) -> None:
    log = server.log()
    assert log.count(OUTAGE_LINE) == 1, log
    assert "Traceback" not in log
    # No per-request line: neither Django's 5xx one nor /ready's.
    assert "Service Unavailable:" not in log and "Readiness check" not in log


@pytest.mark.subprocess  # a real gunicorn
def test_postgresql_port_with_nothing_listening(server_on):
    server = server_on(f"postgres://railfleet:railfleet@127.0.0.1:{free_port()}/h2")
    hammer(server)
    assert_logged_once(server)


@pytest.mark.subprocess  # a real gunicorn
def test_sqlite_file_that_cannot_be_opened_then_can(server_on, tmp_path):
    database = tmp_path / "missing" / "db.sqlite3"
    server = server_on(f"sqlite:///{database}")
    hammer(server)
    assert_logged_once(server)

    # The database comes back: the next request reaches it, with no restart.
    database.parent.mkdir()
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "--verbosity", "0"],
        cwd=ROOT,
        env={**server.env, "DJANGO_DEBUG": "1"},
        check=True,
        timeout=300,
    )
    status, _, body = server.request("/api/defects", headers={"Authorization": "Token " + "0" * 40})
    assert status == 401, body  # the token was looked up, and is unknown
    assert server.request("/ready")[0] == 200
    log = server.log()
    assert log.count(BACK_LINE) == 1 and log.count(OUTAGE_LINE) == 1, log


# Only where the suite runs on PostgreSQL (CI's second pass): SQLite has no server
# connections to kill; its recovery is the test above.
if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":

    @pytest.mark.postgres
    @pytest.mark.subprocess  # a real gunicorn
    @pytest.mark.django_db(transaction=True)
    def test_postgresql_connections_killed_under_the_server(server_on, token):
        assert_recovers_from_killed_connections(server_on, token)


def assert_recovers_from_killed_connections(server_on, token) -> None:
    """Kill the server's connections three times: each time the API answers 200 again."""
    server = server_on(database_url_of_tests())
    auth = {"Authorization": f"Token {token}"}
    assert server.request("/api/defects", headers=auth)[0] == 200

    statuses = []

    def answered_200() -> bool:
        statuses.append(server.request("/api/defects", headers=auth)[0])
        return statuses[-1] == 200

    for _ in range(3):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            assert cursor.fetchone()[0] >= 1  # the server's persistent connection
        wait_for(answered_200, timeout=30, interval=0.2, message="the API to recover")
    assert set(statuses) <= {200, 503}, statuses
    assert "Traceback" not in server.log()
