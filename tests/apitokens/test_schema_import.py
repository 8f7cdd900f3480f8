"""apitokens/schema.py is loaded with the API's authentication, not at Django's setup:
the dispatcher and the management commands never load drf-spectacular's plumbing for it."""

import subprocess
import sys

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.subprocess

SCRIPT = """
import sys
import django
django.setup()
print("drf_spectacular.plumbing" in sys.modules)
from apitokens.authentication import BearerTokenAuthentication
from drf_spectacular.extensions import OpenApiAuthenticationExtension
print(OpenApiAuthenticationExtension.get_match(BearerTokenAuthentication()).name)
"""


def test_setup_loads_no_schema_machinery_and_the_api_registers_the_bearer_scheme():
    env = {"DJANGO_SETTINGS_MODULE": "railfleet.settings", "DJANGO_DEBUG": "1", "PATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    assert result.stdout.split() == ["False", "bearerAuth"]
