"""Settings come from the environment and refuse unsafe production values."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from railfleet.database import database_config

ROOT = Path(__file__).resolve().parent.parent


def test_default_database_is_sqlite_in_wal_mode(tmp_path):
    config = database_config(None, tmp_path)
    assert config["ENGINE"] == "railfleet.sqlite"
    assert config["NAME"] == str(tmp_path / "db.sqlite3")
    assert "journal_mode=WAL" in config["OPTIONS"]["init_command"]
    assert config["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


def test_database_url_switches_to_postgresql(tmp_path):
    config = database_config("postgres://rf:secret@db.example:5433/railfleet", tmp_path)
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"]) == ("db.example", 5433, "railfleet")
    assert "init_command" not in config.get("OPTIONS", {})


def _manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    """`manage.py *args` in a fresh process, with `env` and no DJANGO_/DATABASE_ variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _django_check(env: dict, *options: str) -> subprocess.CompletedProcess:
    return _manage(env, "check", *options)


@pytest.mark.subprocess
def test_debug_off_without_secret_key_refuses_to_start():
    result = _django_check({"DJANGO_DEBUG": "0", "DJANGO_SETTINGS_MODULE": "railfleet.settings"})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr
    assert "Traceback" not in result.stdout


@pytest.mark.subprocess
def test_bare_environment_works_for_development():
    result = _django_check({"DJANGO_SETTINGS_MODULE": "railfleet.settings"})
    assert result.returncode == 0, result.stderr


PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "railfleet.settings",
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "a-long-random-production-secret-" + "x9" * 30,
    "DJANGO_ALLOWED_HOSTS": "defects.example.com",
}
HTTPS_ON = {
    "DJANGO_SECURE_SSL_REDIRECT": "1",
    "DJANGO_SECURE_COOKIES": "1",
    "DJANGO_SECURE_HSTS_SECONDS": "31536000",
    "DJANGO_SECURE_HSTS_PRELOAD": "1",
    "DJANGO_BEHIND_TLS_PROXY": "1",
}
PRINT_DEBUG = "from django.conf import settings; print(settings.DEBUG)"


@pytest.mark.subprocess
def test_debug_follows_django_debug_and_is_off_in_production():
    """In a process of its own: pytest-django forces DEBUG off inside the test run."""
    development = {"DJANGO_SETTINGS_MODULE": "railfleet.settings"}
    production, development = (
        _manage(env, "shell", "--no-imports", "-c", PRINT_DEBUG)
        for env in (PRODUCTION, development)
    )
    assert (production.stdout.strip(), development.stdout.strip()) == ("False", "True"), (
        production.stderr + development.stderr
    )


# SECURE_HSTS_SECONDS, SECURE_SSL_REDIRECT, SESSION_COOKIE_SECURE, CSRF_COOKIE_SECURE.
HTTPS_WARNINGS = {"security.W004", "security.W008", "security.W012", "security.W016"}


@pytest.mark.subprocess
def test_deploy_check_is_clean_with_production_values():
    result = _django_check({**PRODUCTION, **HTTPS_ON}, "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.subprocess
def test_deploy_check_without_https_reports_only_the_https_switches():
    """Off by default, so that a debug-off server answers plain HTTP on 127.0.0.1."""
    result = _django_check(PRODUCTION, "--deploy")
    assert result.returncode == 0, result.stderr
    reported = {
        line.split("(", 1)[1].split(")", 1)[0]
        for line in result.stderr.splitlines()
        if line.startswith("?: (")
    }
    assert reported == HTTPS_WARNINGS, result.stderr
