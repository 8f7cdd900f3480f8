"""`broadcast_pause`/`broadcast_resume --destination NAME` and `broadcast_destinations --enable`."""

import io

import pytest
from django.core.management import CommandError, call_command

from broadcast.control import pause_state
from broadcast.destinations import destination_create, destination_disable
from broadcast.models import Destination

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def planning():
    return destination_create(name="planning", url="http://127.0.0.1:9/")[0]


def test_pausing_one_destination_leaves_the_broadcast_and_the_others_running(planning):
    output = run("broadcast_pause", "--destination", "planning", "--reason", "maintenance")

    planning.refresh_from_db()
    assert (planning.paused, planning.paused_reason) == (True, "maintenance")
    assert not Destination.objects.get(managed=True).paused
    assert not pause_state().paused
    assert "broadcast_resume --destination planning" in output


def test_resuming_one_destination_says_why_it_was_paused(planning):
    run("broadcast_pause", "--destination", "planning", "--reason", "maintenance")

    output = run("broadcast_resume", "--destination", "planning")

    planning.refresh_from_db()
    assert (planning.paused, planning.paused_reason) == (False, "")
    assert output == "Destination planning resumed (it was paused: maintenance).\n"


def test_an_unknown_destination_is_an_error_naming_those_there_are(planning):
    with pytest.raises(
        CommandError, match=r"No destination is named 'plan'.*counter-server, planning"
    ):
        run("broadcast_pause", "--destination", "plan")
    with pytest.raises(CommandError, match="No destination is named 'plan'"):
        run("broadcast_resume", "--destination", "plan")


def test_enable_brings_back_a_disabled_destination_and_clears_its_reason(planning):
    destination_disable(destination=planning, reason="answered HTTP 410: gone")

    output = run("broadcast_destinations", "--enable", "planning")

    planning.refresh_from_db()
    assert (planning.enabled, planning.disabled_reason) == (True, "")
    assert output.startswith("Destination planning enabled.\n")
    listed = {line.split()[0]: line for line in output.splitlines()[2:]}  # then the list
    assert listed["planning"].endswith("  enabled")
