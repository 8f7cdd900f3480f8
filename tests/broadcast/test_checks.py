"""The broadcast's system checks."""

from types import SimpleNamespace

from django.db import connections

from broadcast.checks import sqlite_version


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
