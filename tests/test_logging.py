"""LOGGING in railfleet/settings.py: one line per request, in one format, also in debug mode.

Django's defaults give the "django" logger a console handler of its own in
debug mode, and runserver's request lines a format of their own; the project's
settings route both through the root handler. Run in a fresh process, where
Django applies its defaults and then the project's LOGGING, as runserver does.
"""

import re
import subprocess
import sys

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.subprocess

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ \S+: ")

# What Django logs for one 400 answered by runserver: django.request's warning,
# then runserver's request line (django.core.servers.basehttp).
SCRIPT = """
import logging
import django
django.setup()
from django.http import HttpResponseBadRequest, HttpResponseServerError
from django.test import RequestFactory
from django.utils.log import log_response
request = RequestFactory().post("/api/defects")
log_response("Bad Request: %s", request.path, response=HttpResponseBadRequest(), request=request)
logging.getLogger("django.server").warning(
    '"POST /api/defects HTTP/1.1" 400 58',
    extra={"request": request, "server_time": "now", "status_code": 400},
)
log_response(
    "Internal Server Error: %s", request.path, response=HttpResponseServerError(), request=request
)
"""


def _stderr_lines(debug: str) -> list[str]:
    env = {"DJANGO_SETTINGS_MODULE": "railfleet.settings", "DJANGO_DEBUG": debug, "PATH": ""}
    if debug == "0":
        env |= {"DJANGO_SECRET_KEY": "x" * 50}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stderr.splitlines()


@pytest.mark.parametrize("debug", ["1", "0"])
def test_a_request_warning_is_one_line_in_the_one_format(debug):
    lines = _stderr_lines(debug)
    assert len(lines) == 2, lines  # the 400 once (its request line), the 500 once
    assert all(LINE.match(line) for line in lines), lines
    assert lines[0].endswith('WARNING django.server: "POST /api/defects HTTP/1.1" 400 58')
    assert lines[1].endswith("ERROR django.request: Internal Server Error: /api/defects")
