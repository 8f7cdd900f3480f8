"""Pause and resume: the state in the database, the commands, the admin's buttons."""

import datetime
import math

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from broadcast.control import (
    RUNNING,
    PauseState,
    Watcher,
    pause,
    pause_state,
    resume,
)
from broadcast.models import Control

CHANGELIST = "admin:broadcast_event_changelist"


@pytest.mark.django_db
def test_not_paused_without_a_row():
    assert not Control.objects.exists()
    assert pause_state() == RUNNING == PauseState(paused=False, reason="", since=None)


@pytest.mark.django_db
def test_pause_then_resume():
    before = datetime.datetime.now(datetime.UTC)
    state = pause(reason="counter server migration")

    assert state.paused and state.reason == "counter server migration"
    assert before <= state.since <= datetime.datetime.now(datetime.UTC)
    assert pause_state() == state

    assert resume() == RUNNING
    assert pause_state() == RUNNING
    assert Control.objects.count() == 1


@pytest.mark.django_db
def test_pausing_again_updates_the_reason_and_keeps_since():
    first = pause(reason="one")
    second = pause(reason="two")
    assert second.since == first.since and second.reason == "two"
    assert pause_state() == second


@pytest.mark.django_db
def test_resume_when_not_paused_is_harmless():
    assert resume() == RUNNING
    assert pause_state() == RUNNING


def test_the_state_is_frozen():
    with pytest.raises(AttributeError):
        RUNNING.paused = True


class Source:
    """What a Watcher reads: a value the test sets, and how many times it was read."""

    def __init__(self) -> None:
        self.value = "first"
        self.reads = 0

    def __call__(self) -> str:
        self.reads += 1
        return self.value


# Each step: the clock's time, the call, then what it gives, whether it read, and when the
# watcher reads again. The source's value changes to "v<n>" before each step n.
WATCHER_STEPS = [
    (0.0, "current", "v0", True, 1.0),  # never read: the first call reads
    (0.5, "current", "v0", False, 1.0),  # the last read's, not read again
    (0.999, "current", "v0", False, 1.0),
    (1.0, "current", "v3", True, 2.0),  # an interval after the last read: read
    (1.25, "refresh", "v4", True, 2.25),  # forced: read now, whatever the interval
    (2.0, "current", "v4", False, 2.25),  # an interval from the forced read, not the one before
    (2.25, "current", "v6", True, 3.25),
    (9.0, "current", "v7", True, 10.0),  # long after: one read
    (9.0, "current", "v7", False, 10.0),
]


def test_a_watcher_reads_at_most_every_interval_on_its_clock():
    now = [0.0]
    source = Source()
    watcher = Watcher(source, "initial", interval=1.0, clock=lambda: now[0])
    assert watcher.read_count == 0 and source.reads == 0  # nothing read until asked
    assert watcher.next_read_at == -math.inf
    for step, (at, call, gives, reads, next_read_at) in enumerate(WATCHER_STEPS):
        now[0], source.value, before = at, f"v{step}", watcher.read_count
        assert getattr(watcher, call)() == gives, step
        assert watcher.read_count - before == (1 if reads else 0), step
        assert watcher.read_count == source.reads, step
        assert watcher.next_read_at == pytest.approx(next_read_at), step


@pytest.mark.parametrize(("interval", "read_again_at"), [(0.25, 10.25), (5.0, 15.0)])
def test_a_watcher_reads_again_its_interval_after_the_last_read(interval, read_again_at):
    now = [10.0]
    source = Source()
    watcher = Watcher(source, "initial", interval=interval, clock=lambda: now[0])
    watcher.current()
    assert watcher.next_read_at == read_again_at
    now[0] = read_again_at - 0.001
    watcher.current()
    assert source.reads == 1
    now[0] = read_again_at
    watcher.current()
    assert source.reads == 2 and watcher.next_read_at == read_again_at + interval


@pytest.mark.django_db
def test_pause_and_resume_commands(capsys):
    call_command("broadcast_pause", reason="replaying into staging")
    out = capsys.readouterr().out
    assert "Broadcast paused since" in out and "replaying into staging" in out
    assert pause_state().reason == "replaying into staging"

    call_command("broadcast_resume")
    assert "resumed (it was paused: replaying into staging)" in capsys.readouterr().out
    assert not pause_state().paused

    call_command("broadcast_resume")
    assert "was not paused" in capsys.readouterr().out


@pytest.mark.django_db
def test_pause_command_has_a_default_reason():
    call_command("broadcast_pause")
    assert pause_state().reason == "paused by an operator"


# --- the admin ---------------------------------------------------------------


def staff_client(*, may_pause: bool) -> Client:
    staff = get_user_model().objects.create_user("dora", password="dora-pass", is_staff=True)
    perms = Permission.objects.filter(content_type__app_label="broadcast", codename="view_event")
    if may_pause:
        perms |= Permission.objects.filter(codename="pause_broadcast")
    staff.user_permissions.set(perms)
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    return client


def csrf_post(client: Client, url: str, data: dict | None = None):
    """POST the way the changelist's form does: with the CSRF token of the page."""
    page = client.get(reverse(CHANGELIST))
    return client.post(url, {**(data or {}), "csrfmiddlewaretoken": page.context["csrf_token"]})


@pytest.mark.django_db
def test_the_admin_shows_running_and_a_pause_form_to_who_may_pause():
    page = staff_client(may_pause=True).get(reverse(CHANGELIST)).content.decode()
    assert "Broadcast running." in page
    assert reverse("admin:broadcast_pause") in page


@pytest.mark.django_db
def test_the_admin_pauses_and_resumes_with_csrf(caplog):
    client = staff_client(may_pause=True)

    response = csrf_post(client, reverse("admin:broadcast_pause"), {"reason": "receiver upgrade"})
    assert response.status_code == 302 and response["Location"] == reverse(CHANGELIST)
    # Who paused goes to the log, not into the reason that /ready shows anyone.
    assert pause_state().reason == "receiver upgrade"
    assert "paused in the admin by dora: receiver upgrade" in caplog.text

    page = client.get(reverse(CHANGELIST)).content.decode()
    assert "Broadcast paused" in page and "receiver upgrade" in page
    assert reverse("admin:broadcast_resume") in page

    assert csrf_post(client, reverse("admin:broadcast_resume")).status_code == 302
    assert pause_state() == RUNNING


@pytest.mark.django_db
def test_the_admin_refuses_a_post_without_csrf():
    client = staff_client(may_pause=True)
    assert client.post(reverse("admin:broadcast_pause"), {"reason": "x"}).status_code == 403
    assert pause_state() == RUNNING


@pytest.mark.django_db
def test_the_admin_refuses_get():
    client = staff_client(may_pause=True)
    assert client.get(reverse("admin:broadcast_pause")).status_code == 405
    assert pause_state() == RUNNING


@pytest.mark.django_db
def test_staff_without_the_permission_sees_the_state_but_cannot_pause():
    pause(reason="gone")
    client = staff_client(may_pause=False)
    page = client.get(reverse(CHANGELIST)).content.decode()
    assert "Broadcast paused" in page and "gone" in page
    assert reverse("admin:broadcast_resume") not in page

    assert csrf_post(client, reverse("admin:broadcast_resume")).status_code == 403
    assert pause_state().paused


@pytest.mark.django_db
def test_anonymous_users_are_sent_to_the_login(client):
    response = client.post(reverse("admin:broadcast_pause"), {"reason": "x"})
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert pause_state() == RUNNING


@pytest.mark.django_db
def test_a_superuser_may_pause(admin_client):
    assert admin_client.post(reverse("admin:broadcast_pause"), {}).status_code == 302
    assert pause_state().reason == "paused in the admin"
