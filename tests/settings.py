"""Test settings: the real settings with a fast password hasher."""

import os
import tempfile
from pathlib import Path

from railfleet.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The suite makes many requests per second from one user: throttling is tested
# on its own (tests/security/test_throttling.py) with a low rate.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {"user": "100000/second", "anon": "100000/second"},
}

# On SQLite the test database is a file, not memory, so that the dispatcher
# processes started by the end-to-end and fault tests can open it; one per test
# run, so that runs side by side do not share it.
if DATABASES["default"]["ENGINE"] == "railfleet.sqlite":  # noqa: F405
    _test_db = Path(tempfile.gettempdir()) / f"railfleet-test-{os.getpid()}.sqlite3"
    DATABASES["default"]["TEST"] = {"NAME": str(_test_db)}  # noqa: F405

# Tests never collect static files (test_serve runs `make serve`, which does, in
# its own process): without a STATIC_ROOT WhiteNoise does not warn, on every
# request, that the directory is missing. Debug mode serves from the finders.
STATIC_ROOT = None
