"""The broadcast's system checks."""

from types import SimpleNamespace

import pytest
from django.db import connections

from broadcast.checks import alerts_signed, operations_settings, sqlite_version
from broadcast.signing import new_secret


def test_this_database_passes():
    assert sqlite_version(None, databases=["default"]) == []


def test_no_database_asked_means_no_error():
    assert sqlite_version(None) == []


def test_an_sqlite_older_than_3_35_is_refused(monkeypatch):
    default = connections["default"]
    monkeypatch.setattr(default, "vendor", "sqlite")
    monkeypatch.setattr(default, "Database", SimpleNamespace(sqlite_version_info=(3, 31, 1)))

    (error,) = sqlite_version(None, databases=["default"])

    assert error.id == "broadcast.E001"
    assert "3.31.1" in error.msg


def test_sqlite_3_35_is_enough(monkeypatch):
    default = connections["default"]
    monkeypatch.setattr(default, "vendor", "sqlite")
    monkeypatch.setattr(default, "Database", SimpleNamespace(sqlite_version_info=(3, 35, 0)))

    assert sqlite_version(None, databases=["default"]) == []


@pytest.mark.parametrize(
    ("key", "variable"),
    [
        ("MAX_RATE", "BROADCAST_MAX_RATE"),
        ("RETENTION_DAYS", "BROADCAST_RETENTION_DAYS"),
        ("FAILED_RETENTION_DAYS", "BROADCAST_FAILED_RETENTION_DAYS"),
        ("DISABLE_AFTER_HOURS", "BROADCAST_DISABLE_AFTER_HOURS"),
    ],
)
def test_a_negative_rate_or_retention_is_refused(settings, key, variable):
    settings.BROADCAST = {**settings.BROADCAST, key: -1.0}
    (error,) = operations_settings(None)
    assert error.id == "broadcast.E003"
    assert error.msg == f"{variable} must be 0 (off) or positive, not -1."


def test_zero_and_positive_rate_and_retention_pass(settings):
    settings.BROADCAST = {**settings.BROADCAST, "MAX_RATE": 0.0, "RETENTION_DAYS": 0.0}
    assert operations_settings(None) == []
    settings.BROADCAST = {**settings.BROADCAST, "MAX_RATE": 50.0, "RETENTION_DAYS": 7.0}
    assert operations_settings(None) == []


@pytest.mark.parametrize(
    ("alert_url", "secrets", "warned"),
    [("http://ops.example/alerts", [], True), ("http://ops.example/alerts", None, False),
     ("", [], False)],
)  # fmt: skip
def test_alerts_that_would_go_unsigned_are_warned_of(settings, alert_url, secrets, warned):
    secrets = [new_secret()] if secrets is None else secrets
    settings.BROADCAST = {**settings.BROADCAST, "ALERT_URL": alert_url, "SIGNING_SECRETS": secrets}
    warnings = alerts_signed(None)
    assert [w.id for w in warnings] == (["broadcast.W001"] if warned else [])


def test_the_dispatcher_starts_with_the_checks_of_its_own_settings_only():
    """Not the web side's (admin, URLs, templates): importing what they check was a third
    of a dispatcher's start-up."""
    from django.core.checks.registry import registry
    from django.core.management import load_command_class

    command = load_command_class("broadcast", "broadcast")
    run = {
        check.__name__
        for check in registry.get_checks()
        if set(check.tags) & set(command.requires_system_checks)
    }
    assert run == {"signing_secrets", "operations_settings", "alerts_signed"}
